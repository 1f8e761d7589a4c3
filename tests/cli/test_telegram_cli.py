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
    assert run("remove", bot["bot_id"]).exit_code == 0
    assert run("remove", bot["bot_id"]).exit_code == 2
