"""Per-member activity totals (``member_counts``): events by kind, and messages.

Kept in step by every path that stores member events or messages: ingest bumps them one at a
time, bulk imports and merges recount the members they touched. ``do_recount`` rebuilds the
whole table (``qunyun db recount``) should anything ever disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

from sqlalchemy import Connection, Executable, delete, func, literal, select, union_all
from sqlalchemy.dialects import postgresql, sqlite

from qunyun.adapters.storage.sql import bulk_add_counts, in_id_list, upsert_many
from qunyun.adapters.storage.tables import member_counts, member_events, messages
from qunyun.domain.staff import Permission
from qunyun.services import audit
from qunyun.services.users import Actor

MESSAGE = "message"


@lru_cache(maxsize=2)
def _bump_stmt(dialect: str) -> Executable:
    """Built once per dialect: ingest bumps a count for nearly every event."""
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return dialect_insert(member_counts).values(n=1).on_conflict_do_update(
        index_elements=["member_id", "kind"], set_={"n": member_counts.c.n + 1})


def bump(conn: Connection, member_id: int, kind: str) -> None:
    """One more event of ``kind`` (or message) for the member."""
    conn.execute(_bump_stmt(conn.dialect.name), {"member_id": member_id, "kind": kind})


def add(conn: Connection, kind: str, per_member: Mapping[int, int]) -> None:
    """Add many members' new events (or messages) at once (bulk imports)."""
    bulk_add_counts(conn, member_counts, ("member_id", "kind"), "n",
                    [(m, kind, n) for m, n in per_member.items() if n])


def _totals(member_ids: list[int] | None, conn: Connection) -> object:
    events = (select(member_events.c.member_id, member_events.c.kind,
                     func.count().label("n"))
              .where(member_events.c.member_id.is_not(None))
              .group_by(member_events.c.member_id, member_events.c.kind))
    said = (select(messages.c.member_id, literal(MESSAGE).label("kind"),
                   func.count().label("n"))
            .where(messages.c.member_id.is_not(None), messages.c.direction == "in")
            .group_by(messages.c.member_id))
    if member_ids is not None:
        events = events.where(in_id_list(conn, member_events.c.member_id, member_ids))
        said = said.where(in_id_list(conn, messages.c.member_id, member_ids))
    return union_all(events, said)


def recount(conn: Connection, member_ids: Iterable[int]) -> None:
    """Recount these members from their events and messages (after bulk writes, merges)."""
    ids = sorted(set(member_ids))
    if not ids:
        return
    conn.execute(delete(member_counts).where(in_id_list(conn, member_counts.c.member_id, ids)))
    rows = [{"member_id": m, "kind": k, "n": n}
            for m, k, n in conn.execute(_totals(ids, conn))]  # type: ignore[call-overload]
    for start in range(0, len(rows), 5000):
        upsert_many(conn, member_counts, rows[start:start + 5000], ["member_id", "kind"], ["n"])


def do_recount(conn: Connection, *, actor: Actor) -> int:
    """Rebuild every member's totals; returns how many rows the table holds."""
    actor.require(Permission.OPERATE)
    conn.execute(delete(member_counts))
    totals = _totals(None, conn)
    conn.execute(member_counts.insert().from_select(
        ["member_id", "kind", "n"], select(totals.subquery())))  # type: ignore[attr-defined]
    rows = int(conn.execute(select(func.count()).select_from(member_counts)).scalar_one())
    audit.record(conn, actor=actor.label, action="db.recount", detail={"rows": rows})
    return rows
