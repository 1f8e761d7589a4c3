"""``qunyun export``: a file written with the rows counted; a bad kind or a path that cannot
be written exits non-zero and leaves no file."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli import env, run  # noqa: F401  # the runner and its data dir
from tests.factories import raw_join


def test_export_to_files(env: Path, fresh_db_url: str, tmp_path: Path) -> None:  # noqa: F811
    db = fresh_db_url
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(raw_join("e0", "g1", "u0", name="=1+1"), ensure_ascii=False))
    assert run(db, "ingest", str(events)).exit_code == 0
    out = tmp_path / "members.csv"
    made = run(db, "export", "members", "--out", str(out), "--json")
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["rows"] == 1
    assert "'=1+1" in out.read_text(encoding="utf-8-sig")
    xlsx = tmp_path / "groups.xlsx"
    assert run(db, "export", "groups", "--out", str(xlsx)).exit_code == 0
    assert xlsx.read_bytes()[:2] == b"PK"
    bad = tmp_path / "x.csv"
    wrong = run(db, "export", "secrets", "--out", str(bad))
    assert wrong.exit_code == 2 and "成员" in wrong.output and not bad.exists()
    nowhere = run(db, "export", "members", "--out", str(tmp_path / "no" / "such" / "x.csv"))
    assert nowhere.exit_code == 2 and "--out" in nowhere.output
