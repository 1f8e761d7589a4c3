"""`qunyun telegram …` against real databases and the fake Bot API over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qunyun.adapters.platforms.telegram.fake import FakeTelegram
from qunyun.cli.main import app
from tests.adapters.telegram.conftest import CHAT

runner = CliRunner()


def test_add_poll_and_list_through_the_command(fresh_db_url: str, tmp_path: Path,
                                               tg: FakeTelegram,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUNYUN_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("QUNYUN_TELEGRAM_API_BASE", tg.base_url)

    def run(*args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(app, ["--db", fresh_db_url, "telegram", *args], input=stdin)

    bad = run("add-bot", "--token", "-", stdin="123:short\n")
    assert bad.exit_code == 2 and "BotFather" in bad.output
    token = tg.add_bot()
    added = run("add-bot", "--token", "-", "--json", stdin=token + "\n")
    assert added.exit_code == 0, added.output
    bot = json.loads(added.stdout)
    assert bot["mode"] == "polling" and token not in added.stdout
    tg.bot_added(token, CHAT, rights={"can_delete_messages": True})
    tg.join(token, CHAT, 501, "小 王", link_name="海报A")
    tg.message(token, CHAT, 501, "小 王", "你好")
    polled = run("poll", "--once", "--json")
    assert polled.exit_code == 0, polled.output
    assert json.loads(polled.stdout) == {"stored": 3, "processed": 3, "failed": 0}
    again = json.loads(run("poll", "--once", "--json").stdout)
    assert again["stored"] == 0  # the offset was kept: nothing is asked for twice
    (listed,) = json.loads(run("list", "--json").stdout)
    assert (listed["chats"], listed["admin_chats"], listed["poll_offset"]) == (1, 1, 4)
    chats = run("chats")
    assert chats.exit_code == 0 and "禁言和封禁成员" in chats.output  # a right it lacks
    # switched to a webhook and back: Telegram is asked first, a refusal changes nothing
    refused = run("set-webhook", bot["bot_id"], "--url", "http://example.com")
    assert refused.exit_code == 2 and "https" in refused.output
    hooked = run("set-webhook", bot["bot_id"], "--url", "https://q.example.com/", "--json")
    assert hooked.exit_code == 0, hooked.output
    assert json.loads(hooked.stdout)["webhook"] == (
        f"https://q.example.com/callbacks/telegram/{bot['bot_id']}")
    (hook,) = [b.webhook for b in tg.bots.values()]
    assert hook["url"].startswith("https://q.example.com/") and hook["secret_token"]
    assert json.loads(run("list", "--json").stdout)[0]["mode"] == "webhook"
    tg.fail("deleteWebhook", 500, "Internal Server Error")
    assert run("delete-webhook", bot["bot_id"]).exit_code != 0
    assert json.loads(run("list", "--json").stdout)[0]["mode"] == "webhook"
    polled_again = run("delete-webhook", bot["bot_id"])
    assert polled_again.exit_code == 0 and "轮询" in polled_again.output
    assert json.loads(run("list", "--json").stdout)[0]["mode"] == "polling"
    assert run("remove", bot["bot_id"]).exit_code == 0
    assert run("remove", bot["bot_id"]).exit_code == 2


def test_the_entry_queue_through_the_command(fresh_db_url: str, tmp_path: Path,
                                             tg: FakeTelegram,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Join requests wait for a person (the default gate); the command lists, asks and
    decides them, and refuses a second decision with a clear message."""
    monkeypatch.setenv("QUNYUN_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("QUNYUN_TELEGRAM_API_BASE", tg.base_url)

    def run(*args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(app, ["--db", fresh_db_url, *args], input=stdin)

    token = tg.add_bot()
    assert run("telegram", "add-bot", "--token", "-", stdin=token + "\n").exit_code == 0
    tg.bot_added(token, CHAT)
    tg.join_request(token, CHAT, 601, "申请 [人]", link_name="海报B")
    tg.join_request(token, CHAT, 602, "Lily")
    assert run("telegram", "poll", "--once").exit_code == 0
    listed = run("entry", "list")
    assert listed.exit_code == 0 and "申请 [人]" in listed.output and "待审核" in listed.output
    rows = json.loads(run("entry", "list", "--json").stdout)
    assert [r["status"] for r in rows] == ["pending", "pending"]
    by_name = {r["member"]: r["id"] for r in rows}
    asked = run("entry", "ask", str(by_name["Lily"]), "--text", "哪个班的？", "--json")
    assert asked.exit_code == 0 and json.loads(asked.stdout)["status"] == "asked"
    assert run("entry", "approve", str(by_name["申请 [人]"])).exit_code == 0
    declined = run("entry", "decline", str(by_name["Lily"]), "--reason", "不是本校", "--json")
    assert json.loads(declined.stdout)["status"] == "declined"
    again = run("entry", "approve", str(by_name["Lily"]))
    assert again.exit_code != 0 and "已经处理过了" in again.output
    missing = run("entry", "show", "99999")
    assert missing.exit_code != 0 and "找不到入群申请" in missing.output
    assert json.loads(run("entry", "list", "--status", "closed", "--json").stdout)[0][
        "status"] in ("approved", "declined")
    assert json.loads(run("entry", "expire", "--json").stdout) == {"expired": []}
