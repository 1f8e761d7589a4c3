"""Per-member totals stay equal to a recount from events and messages. Both databases, through
services in the test's transaction."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, select

from qunyun.bootstrap import Runtime
from qunyun.clock import utcnow
from qunyun.services import (
    merges,
)
from qunyun.services.ingest import do_ingest_event
from qunyun.services.users import SYSTEM
from tests.factories import event, raw_message


def test_member_totals_stay_equal_to_a_recount(conn: Connection, runtime: Runtime,
                                               seeded: dict[str, int], tmp_path: Path) -> None:
    """Ingest bumps, imports recount, merges and undo recount: the kept totals always equal
    the totals rebuilt from scratch (what segments read must never drift)."""
    from qunyun.adapters.platforms.exports import formats
    from qunyun.adapters.storage.tables import member_counts
    from qunyun.services import counts
    from qunyun.services.imports import do_import_file

    def kept() -> set[tuple[int, str, int]]:
        return {tuple(r) for r in conn.execute(select(  # type: ignore[misc]
            member_counts.c.member_id, member_counts.c.kind, member_counts.c.n))}

    do_ingest_event(conn, event(raw_message("dup", "math1", "u1", "again", minutes=600)),
                    config=runtime.ingest_config)
    do_ingest_event(conn, event(raw_message("dup", "math1", "u1", "again", minutes=600)),
                    config=runtime.ingest_config)  # a replay: counted once
    fixture = Path(formats.__file__).parent / "fixtures" / "memotrace__group.csv"
    do_import_file(runtime.uow, fixture, now=utcnow())
    do_import_file(runtime.uow, fixture, now=utcnow())  # all duplicates: the recount path
    merge_id = merges.do_merge(conn, actor=SYSTEM, source_id=seeded["u2"],
                               target_id=seeded["u1"])
    after_merge = kept()
    merges.do_undo_merge(conn, actor=SYSTEM, merge_id=merge_id)
    after_undo = kept()
    counts.do_recount(conn, actor=SYSTEM)
    assert after_undo == kept()
    assert (seeded["u1"], "message", 3 + 1) in after_merge  # u1's 3 and u2's 1
    assert (seeded["u1"], "message", 3) in after_undo and (seeded["u1"], "joined", 2) in kept()
