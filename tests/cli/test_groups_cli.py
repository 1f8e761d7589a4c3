"""`qunyun groups …` on real databases: edit settings and state in one go (a refused move
keeps nothing of the edit), the states in words, planned groups, the board, the rules."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from qunyun.adapters.storage.tables import groups
from tests.cli.test_cli import env, run  # noqa: F401  # the command runner and its data dir
from tests.factories import raw_join


def test_the_commands(env: Path, fresh_db_url: str, tmp_path: Path) -> None:  # noqa: F811
    db = fresh_db_url
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(raw_join(f"e{i}", "g1", f"u{i}"),
                                           ensure_ascii=False) for i in range(2)))
    assert run(db, "ingest", str(events)).exit_code == 0
    # both members joined days ago and never spoke
    listed = json.loads(run(db, "groups", "lurkers", "1", "--days", "1", "--json").stdout)
    assert [r["number"] for r in listed] == [10001, 10002]
    dry = run(db, "groups", "lurkers", "1", "--days", "1", "--remove", "--dry-run", "--json")
    assert dry.exit_code == 0 and json.loads(dry.stdout)["dry_run"] is True
    gone = run(db, "groups", "lurkers", "1", "--days", "1", "--remove", "--member", "10001")
    assert gone.exit_code == 0 and "从未发言" in gone.output and "已安排移出 1 人" in gone.output
    given = run(db, "groups", "admins", "1", "--add", "10002", "--role", "atmosphere", "--json")
    assert given.exit_code == 0 and [r["role"] for r in json.loads(given.stdout)] == [
        "atmosphere"]
    assert "托儿" in run(db, "groups", "admins", "1").output
    assert run(db, "groups", "admins", "1", "--add", "10002", "--role", "kol").exit_code == 2
    steps = run(db, "groups", "dissolve", "1", "--gap", "1h", "--dry-run", "--json")
    assert steps.exit_code == 0, steps.output
    plan = json.loads(steps.stdout)
    assert [(s["kind"], s["by"]) for s in plan["steps"]] == [
        ("notice", "platform"), ("avatar", "staff"), ("rename", "platform"),
        ("dismiss", "staff")]
    text = run(db, "groups", "dissolve", "1", "--gap", "1h", "--dry-run")
    assert "群头像换成灰色" in text.output and "人工待办" in text.output
    assert run(db, "groups", "dissolve", "1", "--gap", "soon").exit_code == 2
    edited = run(db, "groups", "edit", "1", "--type", "fan", "--tag", "一期", "--tag", "粉丝",
                 "--state", "dissolving", "--reason", "合并", "--json")
    assert edited.exit_code == 0, edited.output
    out = json.loads(edited.stdout)
    assert (out["group_type"], out["state"], out["settings"]["tags"]) == (
        "fan", "dissolving", ["一期", "粉丝"])
    assert run(db, "groups", "edit", "1", "--state", "closed").exit_code == 0
    refused = run(db, "groups", "edit", "1", "--state", "planned", "--name", "新名字")
    assert refused.exit_code == 2 and "已关闭的群不能再改变状态" in refused.output
    shown = json.loads(run(db, "groups", "show", "1", "--json").stdout)
    assert shown["name"] != "新名字"  # nothing of a refused edit is kept
    text = run(db, "groups", "list")
    assert text.exit_code == 0 and "已关闭" in text.output and "closed" not in text.output
    planned = run(db, "groups", "plan", "--platform", "sandbox", "--name", "二期",
                  "--starts-at", "2026-12-20 20:00", "--json")
    assert planned.exit_code == 0, planned.output
    board = json.loads(run(db, "groups", "board", "--json").stdout)
    assert [g["name"] for c in board if c["state"] == "planned" for g in c["groups"]] == [
        "二期"]
    assert run(db, "groups", "advance", "--json").exit_code == 0
    closed = run(db, "groups", "lurkers", "1", "--days", "1", "--remove")
    assert closed.exit_code == 2 and "已关闭" in closed.output
    assert run(db, "groups", "lurkers", "1", "--days", "0").exit_code == 2
    assert conn_free_count(db) >= 2


def conn_free_count(db: str) -> int:
    """How many groups the database holds (read outside the commands)."""
    from sqlalchemy import create_engine

    engine = create_engine(db)
    try:
        with engine.connect() as c:
            return int(c.execute(select(func.count()).select_from(groups)).scalar_one())
    finally:
        engine.dispose()
