"""A Telegram group's owner and admins are its staff: read from Telegram when the bot is
added (it never reports the admins a group had before), kept by promotions and demotions,
and never moderated or greeted."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, select
from typer.testing import CliRunner

from qunyun.adapters.platforms.telegram.adapter import TelegramAdapter
from qunyun.adapters.platforms.telegram.fake import FakeTelegram
from qunyun.adapters.storage.tables import audit_log, groups, telegram_chats
from qunyun.bootstrap import Runtime, telegram_clients
from qunyun.cli.main import app
from qunyun.services import automation, members, telegram
from qunyun.services import outbox as outbox_service
from qunyun.services.users import SYSTEM
from tests.adapters.telegram.conftest import CHAT
from tests.adapters.telegram.test_connector import connect, pump

AD = "兼职刷单日结300，加V：abc12345 联系电话 13812345678"


def pump_and_sync(rt: Runtime, bot_id: str) -> telegram.ProcessStats:
    """What the worker does: process the updates, then sync the groups the bot joined."""
    telegram.poll_once(rt.uow, box=rt.box, clients=telegram_clients(rt), bot_id=bot_id,
                       now=rt.now())
    adapter = rt.adapters["telegram"]
    assert isinstance(adapter, TelegramAdapter)
    return telegram.process_and_sync(rt.uow, adapter=adapter, config=rt.ingest_config,
                                     box=rt.box, clients=telegram_clients(rt), now=rt.now())


def member_id(conn: Connection, uid: int) -> int:
    found = members.find_identity(conn, platform="telegram", kind="user", external_id=str(uid))
    assert found is not None
    return found


def staff_of(conn: Connection) -> tuple[int | None, list[int]]:
    row = conn.execute(select(groups.c.owner_member_id, groups.c.settings)).one()
    return row.owner_member_id, list((row.settings or {}).get("admins", []))


def deliver(rt: Runtime) -> None:
    for _ in range(3):
        outbox_service.deliver_due(rt.uow, adapters=rt.adapters, limiter=rt.limiter,
                                   worker_id="w", policy=rt.policy, rng=random.Random(1))


def test_admins_from_before_the_bot_are_read_when_it_is_added_and_not_moderated(
        conn: Connection, tg_runtime: Runtime, tg: FakeTelegram) -> None:
    automation.do_update_settings(conn, actor=SYSTEM, section="moderation",
                                  values={"enabled": True, "escalation": ["remove"]})
    automation.do_update_settings(conn, actor=SYSTEM, section="welcome",
                                  values={"enabled": True, "batch_seconds": 0})
    token, bot = connect(tg_runtime, tg)
    tg.promote(token, CHAT, 601, "群主老王", creator=True, report=False)
    tg.promote(token, CHAT, 602, '顾问"小林"', report=False)
    tg.bot_added(token, CHAT)
    assert pump_and_sync(tg_runtime, bot["bot_id"]).added_to == {str(CHAT)}
    assert staff_of(conn) == (member_id(conn, 601), [member_id(conn, 602)])
    # the adviser's sales pitch is theirs to make; the same words from a newcomer are an ad
    tg.message(token, CHAT, 602, '顾问"小林"', AD)
    tg.join(token, CHAT, 700, "新人")
    tg.message(token, CHAT, 700, "新人", AD)
    pump(tg_runtime, bot["bot_id"])
    deliver(tg_runtime)
    assert [c["user_id"] for c in tg.called("banChatMember")] == [700]
    (rights,) = conn.execute(select(telegram_chats.c.rights)).scalars()
    assert all(rights.values())  # the bot's own entry in the list
    assert conn.execute(select(audit_log.c.action).where(
        audit_log.c.action == "telegram.sync")).scalar() == "telegram.sync"


def test_promotions_and_demotions_keep_the_staff_list(conn: Connection, tg_runtime: Runtime,
                                                      tg: FakeTelegram) -> None:
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    tg.join(token, CHAT, 603, "小周")
    tg.join(token, CHAT, 604, "阿杰")
    tg.promote(token, CHAT, 603, "小周")
    tg.promote(token, CHAT, 604, "阿杰")
    pump_and_sync(tg_runtime, bot["bot_id"])
    assert sorted(staff_of(conn)[1]) == sorted([member_id(conn, 603), member_id(conn, 604)])
    tg.promote(token, CHAT, 603, "小周", demote=True)
    pump(tg_runtime, bot["bot_id"])
    assert staff_of(conn)[1] == [member_id(conn, 604)]
    # a sync reads the whole list again: the same answer
    result = telegram.do_sync(tg_runtime.uow, actor=SYSTEM, box=tg_runtime.box,
                              clients=telegram_clients(tg_runtime), now=tg_runtime.now())
    assert (result.chats, result.admins, result.failed) == (1, 1, {})
    assert staff_of(conn)[1] == [member_id(conn, 604)]


def test_a_group_the_bot_left_is_reported_not_fatal(conn: Connection, tg_runtime: Runtime,
                                                    tg: FakeTelegram,
                                                    staff: dict[str, str]) -> None:
    from qunyun.web.app import create_app
    from tests.web.conftest import login

    client = TestClient(create_app(tg_runtime), follow_redirects=False)
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    tg.add_chat(-1009, "别的群")
    tg.bot_added(token, -1009)
    pump(tg_runtime, bot["bot_id"])
    del tg.chats[-1009].bot_rights[int(bot["bot_id"])]  # removed while we were not looking
    csrf = login(client, staff["admin"])
    answer = client.post("/api/v1/telegram/sync", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200, answer.text
    assert answer.json()["chats"] == 1 and "-1009" in answer.json()["failed"]
    page = client.post("/telegram/sync", data={"csrf_token": csrf})
    assert page.status_code == 303
    shown = client.get(page.headers["location"])
    assert "已同步 1 个群" in shown.text and "1 个群没有同步成功" in shown.text


def test_sync_through_the_command(fresh_db_url: str, tmp_path: Path, tg: FakeTelegram,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUNYUN_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("QUNYUN_TELEGRAM_API_BASE", tg.base_url)
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(app, ["--db", fresh_db_url, "telegram", *args], input=stdin)

    token = tg.add_bot()
    assert run("add-bot", "--token", "-", stdin=token + "\n").exit_code == 0
    tg.promote(token, CHAT, 601, "群主老王", creator=True, report=False)
    tg.bot_added(token, CHAT)
    polled = run("poll", "--once")  # polling syncs the group the bot was added to
    assert polled.exit_code == 0, polled.output
    synced = run("sync", "--json")
    assert synced.exit_code == 0, synced.output
    assert json.loads(synced.stdout) == {"chats": 1, "admins": 1, "failed": {}}
    assert "已同步 1 个群" in run("sync").output
