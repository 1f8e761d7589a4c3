"""``qunyun groups merge-candidates|merge|merges|merge-show|merge-finish``: a dry run that
changes nothing, a merge whose progress reads in words, refusals that exit non-zero."""

from __future__ import annotations

import json
from pathlib import Path

from qunyun.adapters.storage.tables import group_merges, groups
from tests.cli.test_cli import count, env, run  # noqa: F401  # the runner and its data dir
from tests.factories import raw_join


def test_merge_from_the_command_line(env: Path, fresh_db_url: str,  # noqa: F811
                                     tmp_path: Path) -> None:
    db = fresh_db_url
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in (
        raw_join("a0", "g1", "u0"), raw_join("a1", "g1", "u1"), raw_join("b0", "g2", "v0"),
        raw_join("c0", "t", "w0"))))
    assert run(db, "ingest", str(events)).exit_code == 0
    ids = {g["external_id"]: str(g["id"])
           for g in json.loads(run(db, "groups", "list", "--json").stdout)}
    small = json.loads(run(db, "groups", "merge-candidates", "--max-members", "2",
                           "--json").stdout)
    assert {str(g["id"]) for g in small} == {ids["g1"], ids["g2"], ids["t"]}
    shown = run(db, "groups", "merge-candidates", "--max-members", "2")
    assert shown.exit_code == 0 and "运营中" in shown.output and "active" not in shown.output

    args = ["groups", "merge", "--from", ids["g1"], "--from", ids["g2"], "--into", ids["t"],
            "--wait", "2d", "--gap", "1h"]
    dry = run(db, *args, "--dry-run")
    assert dry.exit_code == 0 and "共 3 人要换群" in dry.output and "预览" in dry.output
    assert count(db, group_merges) == 0
    made = json.loads(run(db, *args, "--json").stdout)
    assert made["moving"] == 3 and made["merge_id"]
    listed = run(db, "groups", "merges")
    assert listed.exit_code == 0 and "进行中" in listed.output and "running" not in listed.output
    one = run(db, "groups", "merge-show", str(made["merge_id"]))
    assert one.exit_code == 0 and "等群活码" in one.output
    assert run(db, "groups", "merge-finish", str(made["merge_id"])).exit_code == 0
    again = run(db, "groups", "merge-finish", str(made["merge_id"]))
    assert again.exit_code != 0 and "已经结束" in again.output

    before = (count(db, group_merges), count(db, groups))
    same = run(db, "groups", "merge", "--from", ids["t"], "--into", ids["t"])
    assert same.exit_code == 2 and "目标群" in same.output
    closed = run(db, "groups", "merge", "--from", ids["g1"], "--into", ids["t"])
    assert closed.exit_code != 0 and "解散中" in closed.output
    assert (count(db, group_merges), count(db, groups)) == before
