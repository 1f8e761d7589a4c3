"""``qunyun wecom``: connect, sync, join codes, process callbacks — against the fake server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qunyun.adapters.platforms.wecom.fake import FakeWecom
from qunyun.adapters.storage.db import make_engine
from qunyun.adapters.storage.tables import wecom_corps
from qunyun.cli.main import app
from tests.adapters.wecom.conftest import AES_KEY, CORP, SECRET, TOKEN
from tests.cli.test_cli import count
from tests.cli.test_crm_cli import ok, run, runner


def test_wecom_commands(english: None, fresh_db_url: str, tmp_path: Path, fake: FakeWecom,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUNYUN_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("QUNYUN_WECOM_API_BASE", fake.base_url)
    db = fresh_db_url
    fake.add_chat("wrA", "A群", "owner1", members=2)
    fake.add_chat("wrB", "B群", "owner1")
    bad = run(db, "wecom", "add-corp", "--corp-id", CORP, "--agent-id", "1", "--secret", "s",
              "--token", TOKEN, "--aes-key", "short")
    assert bad.exit_code == 2 and "aes_key" in bad.output
    assert count(db, wecom_corps) == 0
    missing = run(db, "wecom", "add-corp", "--corp-id", CORP, "--agent-id", "1000002")
    assert missing.exit_code != 0 and "QUNYUN_WECOM_SECRET" in missing.output
    # secrets on stdin or in the environment, never on the command line `ps` shows
    monkeypatch.setenv("QUNYUN_WECOM_AES_KEY", AES_KEY)
    added = runner.invoke(app, ["--db", db, "wecom", "add-corp", "--corp-id", CORP,
                                "--agent-id", "1000002", "--secret", "-", "--token", "-",
                                "--json"], input=f"{SECRET}\n{TOKEN}\n")
    assert added.exit_code == 0, added.output
    corp = json.loads(added.stdout)
    assert corp["callback_path"] == f"/callbacks/wecom/{CORP}"
    with make_engine(db).connect() as conn:  # sealed at rest
        stored = conn.execute(wecom_corps.select()).mappings().one()
    assert SECRET not in stored["secret"] and AES_KEY not in stored["aes_key"]
    synced = ok(db, "wecom", "sync", CORP)
    assert (synced["groups"], synced["members"]) == (2, 4)
    code = ok(db, "wecom", "join-code", "add", "--corp-id", CORP, "--channel", "poster-a",
              "--group", "wrA", "--group", "wrB")
    assert code["chat_ids"] == ["wrA", "wrB"] and code["qr_code"]
    listed = ok(db, "wecom", "join-code", "list")
    assert [g["members"] for g in listed[0]["groups"]] == [3, 1]
    fake.inject["externalcontact/groupchat/list"] = [60020]
    refused = run(db, "wecom", "sync", CORP)
    assert refused.exit_code == 1 and "IP" in refused.output
    assert ok(db, "wecom", "process")["processed"] == 0
    assert ok(db, "wecom", "list")[0]["status"]["groups"] == 2
