"""Dashboard figures: totals today and a daily series in the team's time zone.

Days are cut in the team's zone in SQL. SQLite has no zone database, so it shifts by the
zone's current UTC offset — exact for zones without daylight saving (Asia/Shanghai).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Date, cast, func, literal_column, select

from qunyun.adapters.storage.tables import groups, member_events, messages, utcnow
from qunyun.services import members as members_service
from qunyun.services import outbox as outbox_service
from qunyun.services import tasks as tasks_service


def utc_offset_minutes(tz: ZoneInfo) -> int:
    """The zone's offset now (SQLite has no zone database; exact for zones without DST)."""
    offset = utcnow().astimezone(tz).utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 60)


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


def local_day(conn: Connection, column: Any, tz: ZoneInfo) -> ColumnElement[Any]:
    """The calendar day of a UTC timestamp column in ``tz``, as text 'YYYY-MM-DD'."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone(tz.key, column), literal_column("'YYYY-MM-DD'"))
    return func.date(column, f"{utc_offset_minutes(tz):+d} minutes")


def local_date(conn: Connection, column: Any, tz: ZoneInfo) -> ColumnElement[Any]:
    """As ``local_day`` for grouping a million rows: a date on PostgreSQL (``str()`` of it is
    the same 'YYYY-MM-DD'), where formatting every row as text cost a quarter of the query."""
    if conn.dialect.name == "postgresql":
        return cast(func.timezone(tz.key, column), Date)
    return local_day(conn, column, tz)


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
             tz: ZoneInfo) -> dict[str, int]:
    day = local_day(conn, stmt_column, tz).label("day")
    rows = conn.execute(select(day, func.count()).select_from(table).where(*where).group_by(day))
    return {str(d): int(n) for d, n in rows}


def overview(conn: Connection, *, tz: ZoneInfo, days: int = 14,
             now: datetime | None = None) -> Overview:
    now = now or utcnow()
    today: date = now.astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, time.min, tzinfo=tz)
    labels = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    msg = _per_day(conn, messages.c.sent_at, messages,
                   [messages.c.sent_at >= start, messages.c.direction == "in"], tz)
    joins = _per_day(conn, member_events.c.occurred_at, member_events,
                     [member_events.c.occurred_at >= start, member_events.c.kind == "joined"], tz)
    leaves = _per_day(conn, member_events.c.occurred_at, member_events,
                      [member_events.c.occurred_at >= start,
                       member_events.c.kind.in_(("left", "left_snapshot", "removed"))], tz)
    return Overview(
        groups=int(conn.execute(select(func.count()).select_from(groups)).scalar_one()),
        members=members_service.count_members(conn),
        messages_today=msg.get(today.isoformat(), 0),
        joins_today=joins.get(today.isoformat(), 0),
        open_tasks=tasks_service.count_open_tasks(conn),
        outbox=outbox_service.outbox_counts(conn),
        days=labels,
        messages_per_day=[msg.get(d, 0) for d in labels],
        joins_per_day=[joins.get(d, 0) for d in labels],
        leaves_per_day=[leaves.get(d, 0) for d in labels],
    )
