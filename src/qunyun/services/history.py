"""Member history: the one writer of ``member_events`` and of the per-member totals kept
from it (``member_counts``, which segments and lead scores read).

Every module that records something a member did or had done to them — a join, a check-in,
an enrolment, a moderation verdict, a blacklisting, a chat export's notices — appends here,
so the rule "an event and its count change together" lives in one place."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, update

from qunyun.adapters.storage.sql import bulk_insert_ignore
from qunyun.adapters.storage.tables import member_events
from qunyun.services import counts

# built once: an insert statement cost more to build than to run on SQLite (ingest's path)
_NEW_EVENT = member_events.insert()
_COLUMNS = ("member_id", "group_id", "kind", "occurred_at", "actor_member_id", "data",
            "inbound_event_id")


def append(conn: Connection, *, kind: str, member_id: int | None, group_id: int | None,
           at: datetime, data: Mapping[str, Any] | None = None, actor_id: int | None = None,
           inbound_id: int | None = None) -> None:
    """One event; the member's total of that kind goes up with it (group-level events, such
    as a rename, have no member and no total)."""
    conn.execute(_NEW_EVENT, {
        "member_id": member_id, "group_id": group_id, "kind": str(kind), "occurred_at": at,
        "actor_member_id": actor_id, "data": dict(data or {}), "inbound_event_id": inbound_id})
    if member_id is not None:
        counts.bump(conn, member_id, str(kind))


def append_many(conn: Connection, events: Sequence[Mapping[str, Any]], *,
                bulk: bool = False) -> None:
    """Many events (keys as ``append``'s: kind, member_id, group_id, at, data, actor_id,
    inbound_id) and their totals, per kind in one statement. ``bulk`` writes them with COPY
    on PostgreSQL and the C executemany on SQLite (a chat export's thousands of notices)."""
    if not events:
        return
    if bulk:
        # a chat export's notices repeat a handful of data shapes ({"scene": "invite",
        # "channel": ""} …): each is encoded once
        texts: dict[tuple[tuple[str, Any], ...], str] = {}

        def encoded(data: Mapping[str, Any] | None) -> str:
            try:
                shape = tuple(data.items()) if data else ()
                text = texts.get(shape)
            except TypeError:  # an unhashable value (a list of targets): not remembered
                return json.dumps(dict(data or {}), ensure_ascii=False)
            if text is None:
                text = texts[shape] = json.dumps(dict(data or {}), ensure_ascii=False)
            return text

        bulk_insert_ignore(conn, member_events, _COLUMNS, [
            (e["member_id"], e.get("group_id"), str(e["kind"]), e["at"], e.get("actor_id"),
             encoded(e.get("data")), e.get("inbound_id"))
            for e in events], ["id"])
    else:
        conn.execute(_NEW_EVENT, [{
            "member_id": e["member_id"], "group_id": e.get("group_id"), "kind": str(e["kind"]),
            "occurred_at": e["at"], "actor_member_id": e.get("actor_id"),
            "data": dict(e.get("data") or {}), "inbound_event_id": e.get("inbound_id")}
            for e in events])
    per_kind: dict[str, Counter[int]] = defaultdict(Counter)
    for e in events:
        if e["member_id"] is not None:
            per_kind[str(e["kind"])][int(e["member_id"])] += 1
    for kind, per_member in per_kind.items():
        counts.add(conn, kind, per_member)


def relabel(conn: Connection, *, member_id: int, kinds: Mapping[int, str]) -> None:
    """Give a member's events (id → new kind) another kind — an overturned verdict keeps its
    events as ``…_overturned`` — and recount the member's totals."""
    if not kinds:
        return
    for event_id, kind in kinds.items():
        conn.execute(update(member_events).where(member_events.c.id == event_id)
                     .values(kind=kind))
    counts.recount(conn, [member_id])
