"""Row counts for 'the database is exactly as before' assertions."""

from __future__ import annotations

from sqlalchemy import Connection, Table, func, select

from qunyun.adapters.storage.tables import (
    groups,
    identities,
    inbound_events,
    member_events,
    members,
    memberships,
    messages,
    outbox,
)

TRACKED = (members, identities, groups, memberships, messages, member_events, inbound_events,
           outbox)


def count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def snapshot(conn: Connection) -> dict[str, int]:
    return {t.name: count(conn, t) for t in TRACKED}
