"""Row counts for 'the database is exactly as before' assertions."""

from __future__ import annotations

from sqlalchemy import Connection, Table, func, select

from qunyun.adapters.storage.tables import (
    blacklist,
    group_merge_members,
    group_merges,
    groups,
    identities,
    inbound_events,
    join_requests,
    member_attributes,
    member_events,
    member_merges,
    member_tags,
    members,
    memberships,
    messages,
    outbox,
    scheduled_jobs,
    segments,
    service_records,
    staff_tasks,
    tag_events,
    tags,
)

TRACKED = (members, identities, groups, memberships, messages, member_events, inbound_events,
           outbox, tags, member_tags, tag_events, member_attributes, service_records, blacklist,
           member_merges, segments, group_merges, group_merge_members, scheduled_jobs,
           staff_tasks, join_requests)


def count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def snapshot(conn: Connection) -> dict[str, int]:
    return {t.name: count(conn, t) for t in TRACKED}
