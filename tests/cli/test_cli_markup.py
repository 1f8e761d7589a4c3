"""Chat members are untrusted in the terminal too: a nickname written as console markup
(``[red]…[/red]``, a stray ``[/]``) prints as written — never styled, never an error — in
a member's card, the entry queue and a one-line result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qunyun.cli.common import console
from tests.cli.test_cli import env, run  # noqa: F401  # the command runner and its data dir
from tests.factories import raw_join

HOSTILE = "[red]王[/red][/][link=http://x]点我"


def test_markup_in_names_prints_as_written(env: Path, fresh_db_url: str,  # noqa: F811
                                           tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 400)  # a wide terminal: table cells on one line
    db = fresh_db_url
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in (
        raw_join("e0", "g1", "u0", name=HOSTILE),
        {"type": "join_request", "id": "r1", "at": "2026-11-20T12:00:00+00:00", "chat": "g1",
         "user": "u9", "user_name": HOSTILE, "channel": "海报A", "bio": "[bold]想入群"})))
    assert run(db, "ingest", str(events)).exit_code == 0
    card = run(db, "members", "show", "10001")
    assert card.exit_code == 0, card.output
    assert HOSTILE in card.output
    queue = run(db, "entry", "queue", "--status", "all")
    assert queue.exit_code == 0, queue.output
    assert "[red]王" in queue.output and "[/]" in queue.output
    planned = run(db, "groups", "plan", "--platform", "sandbox", "--name", HOSTILE)
    assert planned.exit_code == 0 and HOSTILE in planned.output
