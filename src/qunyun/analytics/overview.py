"""Dashboard figures: totals today and a daily series in the team's time zone.

Days are cut in the team's zone in SQL. PostgreSQL converts with its zone database; SQLite has
none, so it adds the zone's UTC offset span by span over the window read (``offset_spans``):
exact across summer time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Connection,
    Date,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
)

from qunyun.adapters.storage.tables import groups, member_events, messages
from qunyun.clock import utcnow
from qunyun.domain.history import LEAVE_KINDS, MemberEventKind


def offset_spans(tz: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """The zone's UTC offset in seconds at ``start`` and at each change of it up to ``end``:
    [(start, offset), (change, offset), ...] — so SQL can turn UTC into local time as UTC
    plus the offset of the span a time falls in: exact across summer time (unlike today's
    offset) and no zone database per row (DuckDB's ICU conversion cost more than the rest of
    the projection). Changes are found day by day and pinned to the second by halving."""

    def offset(at: datetime) -> int:
        return int((at.astimezone(tz).utcoffset() or timedelta(0)).total_seconds())

    spans = [(start, offset(start))]
    at = start
    while at < end:
        nxt = min(at + timedelta(days=1), end)
        if offset(nxt) != spans[-1][1]:  # a change in (at, nxt]: halve to the second
            lo, hi = int(at.timestamp()), int(nxt.timestamp()) + 1
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if offset(_at(mid)) == spans[-1][1] else (lo, mid)
            spans.append((_at(hi), offset(_at(hi))))
        at = nxt
    return spans


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def by_span(column: Any, spans: list[tuple[datetime, int]],
            value: Callable[[int], Any] = int) -> Any:
    """SQL for ``value(offset)`` of the span (from :func:`offset_spans`) ``column`` falls in;
    before the first span, the first's, after the last, the last's."""
    last = literal(value(spans[-1][1]))
    if len(spans) == 1:
        return last
    return case(*((column < at, value(off)) for (_, off), (at, _) in pairwise(spans)),
                else_=last)


def sqlite_shift(column: Any, spans: list[tuple[datetime, int]]) -> Any:
    """The SQLite date modifier ('+3600 seconds') that takes ``column`` to local time."""
    return by_span(column, spans, lambda s: f"{s:+d} seconds")


def local_day(conn: Connection, column: Any, tz: ZoneInfo,
              within: tuple[datetime, datetime]) -> ColumnElement[Any]:
    """The calendar day of a UTC timestamp column in ``tz``, as text 'YYYY-MM-DD', exact for
    times ``within`` the window the query reads."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone(tz.key, column), literal_column("'YYYY-MM-DD'"))
    spans = offset_spans(tz, *within)
    return func.date(column, sqlite_shift(column, spans))


def local_date(conn: Connection, column: Any, tz: ZoneInfo,
               within: tuple[datetime, datetime]) -> ColumnElement[Any]:
    """As ``local_day`` for grouping a million rows: a date on PostgreSQL (``str()`` of it is
    the same 'YYYY-MM-DD'), where formatting every row as text cost a quarter of the query."""
    if conn.dialect.name == "postgresql":
        return cast(func.timezone(tz.key, column), Date)
    return local_day(conn, column, tz, within)


@dataclass
class Overview:
    groups: int
    members: int
    messages_today: int
    joins_today: int
    open_tasks: int
    outbox: dict[str, int]
    days: list[str]
    messages_per_day: list[int]
    joins_per_day: list[int]
    leaves_per_day: list[int]


def _per_day(conn: Connection, stmt_column: Any, table: Any, where: list[Any],
             tz: ZoneInfo, within: tuple[datetime, datetime]) -> dict[str, int]:
    day = local_day(conn, stmt_column, tz, within).label("day")
    rows = conn.execute(select(day, func.count()).select_from(table).where(*where).group_by(day))
    return {str(d): int(n) for d, n in rows}


def overview(conn: Connection, *, tz: ZoneInfo, members: int, open_tasks: int,
             outbox: Mapping[str, int], days: int = 14,
             now: datetime | None = None) -> Overview:
    """The figures of the dashboard; the store's totals (members, open tasks, the outbox)
    come from the services that own them (analytics read messages and history only)."""
    now = now or utcnow()
    today: date = now.astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, time.min, tzinfo=tz)
    labels = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    within = (start, datetime.combine(today + timedelta(days=1), time.min, tzinfo=tz))
    msg = _per_day(conn, messages.c.sent_at, messages,
                   [messages.c.sent_at >= start, messages.c.direction == "in"], tz, within)
    joins = _per_day(conn, member_events.c.occurred_at, member_events,
                     [member_events.c.occurred_at >= start,
                      member_events.c.kind == MemberEventKind.JOINED], tz, within)
    leaves = _per_day(conn, member_events.c.occurred_at, member_events,
                      [member_events.c.occurred_at >= start,
                       member_events.c.kind.in_(LEAVE_KINDS)], tz, within)
    return Overview(
        groups=int(conn.execute(select(func.count()).select_from(groups)).scalar_one()),
        members=members,
        messages_today=msg.get(today.isoformat(), 0),
        joins_today=joins.get(today.isoformat(), 0),
        open_tasks=open_tasks,
        outbox=dict(outbox),
        days=labels,
        messages_per_day=[msg.get(d, 0) for d in labels],
        joins_per_day=[joins.get(d, 0) for d in labels],
        leaves_per_day=[leaves.get(d, 0) for d in labels],
    )
