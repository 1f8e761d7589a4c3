"""Row counts for 'the database is exactly as before' assertions."""

from __future__ import annotations

from sqlalchemy import Connection, Table, func, select

from qunyun.adapters.storage.tables import (
    blacklist,
    groups,
    identities,
    inbound_events,
    member_attributes,
    member_events,
    member_merges,
    member_tags,
    members,
    memberships,
    messages,
    outbox,
    segments,
    service_records,
    tag_events,
    tags,
)

TRACKED = (members, identities, groups, memberships, messages, member_events, inbound_events,
           outbox, tags, member_tags, tag_events, member_attributes, service_records, blacklist,
           member_merges, segments)


def count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def snapshot(conn: Connection) -> dict[str, int]:
    return {t.name: count(conn, t) for t in TRACKED}
