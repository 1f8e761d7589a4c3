"""The CLI against real databases: JSON output, exit codes 0/1/2, all-or-nothing ingest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from qunyun.adapters.storage.db import make_engine
from qunyun.adapters.storage.tables import inbound_events, outbox
from qunyun.cli.main import app
from tests.conftest import new_database_url
from tests.factories import raw_join, raw_message

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QUNYUN_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("QUNYUN_DATABASE_URL", raising=False)
    return tmp_path


def run(db: str, *args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["--db", db, *args], input=stdin)


def count(db: str, table) -> int:  # type: ignore[no-untyped-def]
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    finally:
        engine.dispose()


def test_unmigrated_database_is_refused_with_a_hint(env: Path, db_kind: str) -> None:
    db = new_database_url(db_kind, env)
    result = run(db, "users", "list")
    assert result.exit_code == 1 and "qunyun db upgrade" in result.output


def test_upgrade_users_and_json(english: None, env: Path, fresh_db_url: str) -> None:
    db = fresh_db_url
    up = run(db, "db", "upgrade", "--json")
    assert up.exit_code == 0, up.output
    current = json.loads(run(db, "db", "current", "--json").stdout)
    assert current["revision"] == current["head"] is not None
    made = run(db, "users", "create", "lin", "--role", "sales", "--password", "-", "--json",
               stdin="a long password\n")
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["role"] == "sales"
    dup = run(db, "users", "create", "lin", "--password", "-", stdin="a long password\n")
    assert dup.exit_code == 2 and "taken" in dup.output
    weak = run(db, "users", "create", "zhou", "--password", "-", stdin="short\n")
    assert weak.exit_code == 2 and "at least 8" in weak.output
    listed = json.loads(run(db, "users", "list", "--json").stdout)
    assert [u["username"] for u in listed] == ["lin"]
    token = json.loads(run(db, "users", "token", "lin", "--json").stdout)["token"]
    assert token.startswith("qy_")
    guessable = run(db, "users", "create", "zhou", "--password", "-", stdin="12345678\n")
    assert guessable.exit_code == 2 and "too easy to guess" in guessable.output
    assert run(db, "users", "token", "lin", "--days", "0").exit_code == 2
    changed = run(db, "users", "set", "lin", "--role", "viewer", "--disable", "--json")
    assert changed.exit_code == 0, changed.output
    assert (json.loads(changed.stdout)["role"], json.loads(changed.stdout)["active"]) == (
        "viewer", False)
    tokens = json.loads(run(db, "users", "tokens", "lin", "--json").stdout)
    assert [t["live"] for t in tokens] == [True] and tokens[0]["label"] == ""
    revoked = run(db, "users", "revoke-token", str(tokens[0]["id"]), "--json")
    assert revoked.exit_code == 0, revoked.output
    assert [t["live"] for t in json.loads(run(db, "users", "tokens", "--json").stdout)] == [
        False]
    missing = run(db, "users", "set", "nobody", "--enable")
    assert missing.exit_code == 2 and "nobody" in missing.output


def test_ingest_file_then_worker_delivers(env: Path, fresh_db_url: str) -> None:
    db = fresh_db_url
    path = env / "events.jsonl"
    lines = [raw_join("e1", "g1", "u1"), {"type": "pat", "id": "p1"},
             raw_message("e2", "g1", "u1", "你好"), raw_join("e1", "g1", "u1")]
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n\n")
    result = run(db, "ingest", str(path), "--json")
    assert result.exit_code == 0, result.output
    totals = json.loads(result.stdout)
    assert totals["lines"] == 4 and totals["events"] == 3 and totals["duplicates"] == 1
    assert totals["skipped"] == {"pat": 1}
    tick = run(db, "worker", "--once", "--json")
    assert tick.exit_code == 0 and json.loads(tick.stdout)["delivered"] == 0
    status = json.loads(run(db, "status", "--json").stdout)
    assert status["inbound_by_platform"] == {"sandbox": 2}


def test_bad_line_names_file_and_line_and_imports_nothing(english: None, env: Path,
                                                           fresh_db_url: str) -> None:
    db = fresh_db_url
    path = env / "broken.jsonl"
    path.write_text(json.dumps(raw_join("e1", "g1", "u1")) + "\n"
                    + json.dumps(raw_join("e2", "g1", "u2")) + "\n"
                    + '{"type": "join", "id": "e3", "at": "2026-11-20T12:00:00Z", "chat": "g1"}\n')
    result = run(db, "ingest", str(path))
    assert result.exit_code == 2
    assert f"{path}:3" in result.output and "'user'" in result.output
    assert count(db, inbound_events) == 0
    notjson = env / "notjson.jsonl"
    notjson.write_text("hello\n")
    bad = run(db, "ingest", str(notjson))
    assert bad.exit_code == 2 and f"{notjson}:1" in bad.output
    missing = run(db, "ingest", str(env / "nope.jsonl"))
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_usage_errors_exit_2(env: Path, fresh_db_url: str) -> None:
    assert run(fresh_db_url, "outbox", "list", "--status", "bogus").exit_code == 2
    assert runner.invoke(app, ["no-such-command"]).exit_code == 2
    assert run(fresh_db_url, "outbox", "retry", "999").exit_code == 2
    assert run(fresh_db_url, "tasks", "done", "999").exit_code == 2
    listed = json.loads(run(fresh_db_url, "tasks", "list", "--json").stdout)
    assert listed["rows"] == [] and listed["total"] == 0
    assert run(fresh_db_url, "tasks", "list", "--page", "0").exit_code == 2
    assert run(fresh_db_url, "outbox", "list", "--sort", "password").exit_code == 2
    assert count(fresh_db_url, outbox) == 0


def test_import_json_totals_and_exit_codes(env: Path, fresh_db_url: str) -> None:
    from qunyun.adapters.platforms.exports import formats

    fixtures = Path(formats.__file__).parent / "fixtures"
    db = fresh_db_url
    result = run(db, "import", str(fixtures / "memotrace__group.csv"),
                 str(fixtures / "telegram__supergroup.json"), "--json")
    assert result.exit_code == 0, result.output
    totals = json.loads(result.stdout)
    for key in ("format", "groups", "members", "messages", "joins", "leaves", "kicks",
                "renames", "recalls", "skipped", "errors", "files"):
        assert key in totals
    assert totals["format"] == "mixed" and totals["groups"] == 2
    assert totals["messages"] == 10 and totals["joins"] == 7 and totals["kicks"] == 2
    assert [f["format"] for f in totals["files"]] == ["memotrace", "telegram"]
    again = json.loads(run(db, "import", str(fixtures / "memotrace__group.csv"), "--json").stdout)
    assert again["messages"] == 0 and again["duplicate_messages"] == 7
    bad = run(db, "import", str(fixtures / "memotrace__bad_time.csv"))
    assert bad.exit_code == 2 and "memotrace__bad_time.csv:3" in bad.output
    skipped = json.loads(run(db, "import", str(fixtures / "memotrace__bad_time.csv"),
                             "--on-error", "skip", "--json").stdout)
    assert skipped["skipped"] == 1 and skipped["errors"][0]["line"] == 3
    assert run(db, "import", str(fixtures / "x.csv"), "--format", "word").exit_code == 2
    forced = run(db, "import", str(fixtures / "memotrace__group.csv"), "--format", "qq-txt")
    assert forced.exit_code == 2 and "looks like a memotrace export, not qq-txt" in forced.output
    undated = run(db, "import", str(fixtures / "irc__channel.txt"))
    assert undated.exit_code == 2 and "--date" in undated.output
    dated = json.loads(run(db, "import", str(fixtures / "irc__channel.txt"), "--date",
                           "2025-03-14", "--json").stdout)
    assert dated["messages"] == 3
    assert run(db, "import", str(fixtures / "irc__channel.txt"), "--date",
               "14/03/2025").exit_code == 2


def test_report_groups_json_and_html(env: Path, fresh_db_url: str) -> None:
    from qunyun.adapters.platforms.exports import formats

    fixtures = Path(formats.__file__).parent / "fixtures"
    db = fresh_db_url
    assert run(db, "import", str(fixtures / "memotrace__group.csv")).exit_code == 0
    out = env / "health.html"
    result = run(db, "report", "groups", "--since", "2025-11-01", "--until", "2025-11-30",
                 "--json", "--html", str(out))
    assert result.exit_code == 0, result.output
    [group] = json.loads(result.stdout)
    for key in ("id", "name", "platform", "members", "messages", "speakers", "joins",
                "leaves", "kicks"):
        assert key in group
    assert group["messages"] == 7 and group["joins"] == 5 and group["kicks"] == 1
    assert group["name"] == "业主福利群（二期）" and group["platform"] == "wechat"
    html = out.read_text(encoding="utf-8")
    assert "业主福利群（二期）" in html and "<script src=" not in html
    assert run(db, "report", "groups", "--group", "999").exit_code == 2
    alerts = json.loads(run(db, "report", "alerts", "--json").stdout)
    assert [a["kind"] for a in alerts["raised"]] == ["silent"]  # the export ended in 2025
    assert json.loads(run(db, "report", "alerts", "--json").stdout)["raised"] == []
    listed = run(db, "report", "alerts", "--no-check")
    assert listed.exit_code == 0 and "最近 3 天无人发言" in listed.output
    assert run(db, "users", "create", "viewer1", "--role", "viewer", "--password",
               "secret-pass").exit_code == 0
    refused = run(db, "report", "alerts", "--as", "viewer1")  # checking raises tasks
    assert refused.exit_code == 2 and "Traceback" not in refused.output, refused.output
    assert "你的角色是「只读」" in refused.output and "may not" not in refused.output
    looked = run(db, "report", "alerts", "--no-check", "--as", "viewer1")
    assert looked.exit_code == 0 and "最近 3 天无人发言" in looked.output
    assert run(db, "report", "groups", "--since", "soon").exit_code == 2


def test_import_snapshot_cli(env: Path, fresh_db_url: str) -> None:
    from qunyun.adapters.platforms.exports import formats

    fixtures = Path(formats.__file__).parent / "fixtures"
    db = fresh_db_url
    assert run(db, "import", str(fixtures / "memotrace__group.csv")).exit_code == 0
    result = run(db, "import-snapshot", str(fixtures / "snapshot__chatroom.json"), "--at",
                 "2025-11-21T20:00", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["listed"] == 4 and data["joined_implied"] == 1 and data["left_derived"] > 0
    bad = run(db, "import-snapshot", str(fixtures / "snapshot__bad.csv"), "--at", "2025-11-21")
    assert bad.exit_code == 2 and "snapshot__bad.csv:3" in bad.output
    assert run(db, "import-snapshot", str(fixtures / "snapshot__members.csv"), "--at",
               "someday").exit_code == 2


def test_errors_speak_chinese(env: Path, db_kind: str) -> None:
    """With no language set, a refusal reads in the team's Chinese, not the English
    sentence the service raised (that one stays in logs and the API's error field)."""
    db = new_database_url(db_kind, env)
    assert run(db, "db", "upgrade").exit_code == 0
    made = run(db, "users", "create", "lin", "--password", "-", stdin="a long password\n")
    assert made.exit_code == 0, made.output
    dup = run(db, "users", "create", "lin", "--password", "-", stdin="a long password\n")
    assert dup.exit_code == 2 and "用户名 'lin' 已被使用" in dup.output, dup.output
    assert "taken" not in dup.output and "error:" not in dup.output


def test_join_codes_on_any_platform_that_can_make_them(env: Path, fresh_db_url: str) -> None:
    db = fresh_db_url
    path = env / "events.jsonl"
    path.write_text(json.dumps(raw_join("e1", "g1", "u1"), ensure_ascii=False) + "\n")
    assert run(db, "ingest", str(path)).exit_code == 0
    made = run(db, "join-codes", "add", "--platform", "sandbox", "--account", "demo",
               "--channel", "海报A", "--group", "g1", "--json")
    assert made.exit_code == 0, made.output
    code = json.loads(made.stdout)
    assert code["platform"] == "sandbox" and code["state"] == "active" and code["qr_code"]
    listed = json.loads(run(db, "join-codes", "list", "--platform", "sandbox", "--json").stdout)
    assert [c["channel"] for c in listed] == ["海报A"]
    shown = run(db, "join-codes", "list")  # the team's words, not the role codes
    assert "使用中" in shown.output and "attached" not in shown.output
    nowhere = run(db, "join-codes", "add", "--platform", "nowhere", "--account", "x",
                  "--channel", "c", "--group", "g1")
    assert nowhere.exit_code == 1 and "没有平台 'nowhere' 的连接器" in nowhere.output
    assert run(db, "join-codes", "delete", str(code["id"])).exit_code == 0
    assert json.loads(run(db, "join-codes", "list", "--json").stdout) == []


def test_inbox_says_when_nothing_needs_attention(env: Path, fresh_db_url: str) -> None:
    shown = run(fresh_db_url, "inbox")
    assert shown.exit_code == 0 and "今天没有待处理的事" in shown.output
    data = json.loads(run(fresh_db_url, "inbox", "--json").stdout)
    assert data["total"] == 0 and len(data["entries"]) == 5
