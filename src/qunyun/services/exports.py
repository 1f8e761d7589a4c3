"""Exports for people who continue in a spreadsheet (F35): members, groups, messages, events,
activities, conversions and a plan's days, as CSV or XLSX.

Rows stream from the database to the file (a team's million messages never sit in memory
at once); every cell goes through ``spreadsheets.safe_cell`` (chat members choose their
names and words: nothing they wrote becomes a formula); phones and addresses are masked for
roles that may not see personal data; times are in the team's time zone; every export is
audited with its kind and row count.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from qunyun.adapters.storage.tables import (
    activities,
    conversions,
    groups,
    member_events,
    members,
    memberships,
    messages,
)
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.domain.planning import METRICS
from qunyun.domain.staff import Permission
from qunyun.i18n import Terms, translate
from qunyun.services import audit, plans
from qunyun.services.activities import list_activities
from qunyun.services.errors import InvalidInput
from qunyun.services.leads import mask_address, mask_phone
from qunyun.services.members import shown_name
from qunyun.services.spreadsheets import XLSX_OPTIONS, safe_cell
from qunyun.services.users import Actor

KINDS = ("members", "groups", "messages", "events", "activities", "conversions", "plan")
FORMATS = ("csv", "xlsx")
STREAM = 5000  # rows fetched at a time

Rows = Iterator[list[Any]]


def _local(value: datetime | None, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _stream(conn: Connection, stmt: Any) -> Iterator[Any]:
    yield from conn.execute(stmt.execution_options(yield_per=STREAM))


def _members(conn: Connection, actor: Actor, tz: ZoneInfo, **_: Any) -> tuple[list[str], Rows]:
    pii = actor.can(Permission.MEMBER_PII)
    in_groups = (select(memberships.c.member_id, func.count().label("n"))
                 .where(memberships.c.left_at.is_(None))
                 .group_by(memberships.c.member_id).subquery())
    stmt = (select(members.c.number, members.c.display_name, members.c.first_seen_at,
                   members.c.last_seen_at, members.c.phone, members.c.address,
                   func.coalesce(in_groups.c.n, 0))
            .outerjoin(in_groups, in_groups.c.member_id == members.c.id)
            .where(members.c.merged_into_id.is_(None)).order_by(members.c.number))
    header = ["number", "name", "first_seen", "last_seen", "phone", "address", "groups"]
    return header, ([int(n), shown_name(name, int(n)), _local(first, tz), _local(last, tz),
                     phone if pii else mask_phone(phone),
                     address if pii else mask_address(address), int(k)]
                    for n, name, first, last, phone, address, k in _stream(conn, stmt))


def _groups(conn: Connection, actor: Actor, tz: ZoneInfo, lang: str, **_: Any
            ) -> tuple[list[str], Rows]:
    current = (select(memberships.c.group_id, func.count().label("n"))
               .where(memberships.c.left_at.is_(None))
               .group_by(memberships.c.group_id).subquery())
    stmt = (select(groups.c.id, groups.c.name, groups.c.platform, groups.c.group_type,
                   groups.c.state, func.coalesce(current.c.n, 0), groups.c.capacity,
                   groups.c.created_at)
            .outerjoin(current, current.c.group_id == groups.c.id).order_by(groups.c.id))
    header = ["group_id", "group", "platform", "type", "state", "members", "capacity",
              "created"]
    return header, ([int(i), name, translate(f"platform.{platform}", lang),
                     translate(f"gtype.{kind}", lang), translate(f"gstate.{state}", lang),
                     int(n), int(cap), _local(made, tz)]
                    for i, name, platform, kind, state, n, cap, made in _stream(conn, stmt))


def _window(stmt: Any, column: Any, since: datetime | None, until: datetime | None) -> Any:
    if since is not None:
        stmt = stmt.where(column >= since)
    if until is not None:
        stmt = stmt.where(column < until)
    return stmt


def _messages(conn: Connection, actor: Actor, tz: ZoneInfo, lang: str,
              since: datetime | None, until: datetime | None, **_: Any
              ) -> tuple[list[str], Rows]:
    stmt = _window(select(messages.c.sent_at, groups.c.name, members.c.number,
                          members.c.display_name, messages.c.direction,
                          messages.c.message_type, messages.c.text, messages.c.recalled)
                   .join(groups, groups.c.id == messages.c.group_id)
                   .outerjoin(members, members.c.id == messages.c.member_id)
                   .order_by(messages.c.sent_at, messages.c.id),
                   messages.c.sent_at, since, until)
    header = ["time", "group", "number", "name", "direction", "message_type", "text",
              "recalled"]
    return header, ([_local(at, tz), group, int(n) if n is not None else "",
                     shown_name(name, int(n)) if n is not None else "",
                     translate(f"export.direction.{direction}", lang), kind, text,
                     translate("export.yes", lang) if recalled
                     else translate("export.no", lang)]
                    for at, group, n, name, direction, kind, text, recalled
                    in _stream(conn, stmt))


def _event_words(kind: str, lang: str) -> str:
    """An event's kind as the member's timeline says it (the code where it has no words)."""
    key = f"timeline.event.{kind}"
    said = translate(key, lang)
    return kind if said == key else said


def _events(conn: Connection, actor: Actor, tz: ZoneInfo, lang: str, since: datetime | None,
            until: datetime | None, **_: Any) -> tuple[list[str], Rows]:
    stmt = _window(select(member_events.c.occurred_at, member_events.c.kind,
                          groups.c.name, members.c.number, members.c.display_name)
                   .outerjoin(groups, groups.c.id == member_events.c.group_id)
                   .outerjoin(members, members.c.id == member_events.c.member_id)
                   .order_by(member_events.c.occurred_at, member_events.c.id),
                   member_events.c.occurred_at, since, until)
    header = ["time", "event", "group", "number", "name"]
    return header, ([_local(at, tz), _event_words(kind, lang), group or "",
                     int(n) if n is not None else "",
                     shown_name(name, int(n)) if n is not None else ""]
                    for at, kind, group, n, name in _stream(conn, stmt))


def _activities(conn: Connection, actor: Actor, **_: Any) -> tuple[list[str], Rows]:
    header = ["code", "activity", "opens", "starts", "ends", "enrolled", "deposits_yuan",
              "gmv_yuan", "cost_yuan"]
    return header, ([a["code"], a["name"], a["opens_on"], a["starts_on"], a["ends_on"],
                     a["enrolled"], a["deposits"], a["gmv"], a["cost"]]
                    for a in list_activities(conn, actor=actor))


def _conversions(conn: Connection, actor: Actor, tz: ZoneInfo, lang: str,
                 since: datetime | None, until: datetime | None, **_: Any
                 ) -> tuple[list[str], Rows]:
    stmt = _window(select(conversions.c.occurred_at, conversions.c.kind,
                          conversions.c.amount_fen, activities.c.code, members.c.number,
                          members.c.display_name, conversions.c.channel,
                          conversions.c.external_ref, conversions.c.note)
                   .outerjoin(activities, activities.c.id == conversions.c.activity_id)
                   .outerjoin(members, members.c.id == conversions.c.member_id)
                   .order_by(conversions.c.occurred_at, conversions.c.id),
                   conversions.c.occurred_at, since, until)
    header = ["time", "kind", "amount_yuan", "activity", "number", "name", "channel",
              "reference", "note"]
    return header, ([_local(at, tz), translate(f"export.conversion.{kind}", lang),
                     round(int(fen) / 100, 2), code or "", int(n) if n is not None else "",
                     shown_name(name, int(n)) if n is not None else "", channel,
                     ref or "", note]
                    for at, kind, fen, code, n, name, channel, ref, note
                    in _stream(conn, stmt))


def _plan(conn: Connection, actor: Actor, tz: ZoneInfo, plan: str | None, now: datetime,
          **_: Any) -> tuple[list[str], Rows]:
    if not plan:
        raise InvalidInput("plan: which plan (its id or name)")
    report = plans.plan_actual(conn, actor=actor, plan_id=plans.find_plan(
        conn, actor=actor, ref=plan), tz=tz, now=now)
    header = ["day"] + [f"{m}_{part}" for m in METRICS for part in ("target", "actual")]
    return header, ([d["day"]] + [v for m in METRICS for v in (
        "" if d[m]["target"] is None else d[m]["target"], d[m]["actual"])]
        for d in report["days"])


SOURCES: dict[str, Callable[..., tuple[list[str], Rows]]] = {
    "members": _members, "groups": _groups, "messages": _messages, "events": _events,
    "activities": _activities, "conversions": _conversions, "plan": _plan}


def _header(names: list[str], lang: str) -> list[str]:
    """Column names in the reader's language (a plan's ``joined_target`` from its parts)."""
    out = []
    for name in names:
        metric, _, part = name.rpartition("_")
        if metric in METRICS and part in ("target", "actual"):
            out.append(f"{translate(f'plan.metric.{metric}', lang)}"
                       f"（{translate(f'export.col.{part}', lang)}）")
        else:
            out.append(translate(f"export.col.{name}", lang))
    return out


def day_bounds(since: str | None, until: str | None, tz: ZoneInfo
               ) -> tuple[datetime | None, datetime | None]:
    """From the start of ``since`` to the end of ``until`` (days, team time), both kept."""
    start = (datetime.combine(plans.parse_day(since, "from"), time.min, tzinfo=tz)
             if since else None)
    end = (datetime.combine(plans.parse_day(until, "to") + timedelta(days=1), time.min,
                            tzinfo=tz) if until else None)
    return start, end


def do_export(uow: UnitOfWork, *, actor: Actor, kind: str, fmt: str, out: IO[bytes],
              tz: ZoneInfo, now: datetime, language: str = "zh-CN",
              since: str | None = None, until: str | None = None,
              plan: str | None = None) -> int:
    """Write ``kind`` to ``out`` as ``fmt`` (messages, events and conversions from day
    ``since`` through day ``until``); returns the rows written. The rows are read in
    a read transaction (a long export never holds the write lock the worker needs) and the
    export is audited once written."""
    actor.require(Permission.VIEW)
    if kind not in SOURCES:
        raise InvalidInput("kind: one of {choices}", choices=Terms("export.kind", KINDS))
    if fmt not in FORMATS:
        raise InvalidInput("format: csv or xlsx")
    start, end = day_bounds(since, until, tz)
    with uow.read() as conn:
        names, rows = SOURCES[kind](conn, actor=actor, tz=tz, lang=language, since=start,
                                    until=end, plan=plan, now=now)
        header = _header(names, language)
        count = (_write_csv(out, header, rows) if fmt == "csv"
                 else _write_xlsx(out, kind, header, rows))
    with uow.write() as conn:
        audit.record(conn, actor=actor.label, action="export", object_type="team",
                     detail={"kind": kind, "format": fmt, "rows": count,
                             "masked": not actor.can(Permission.MEMBER_PII)})
    return count


def _write_csv(out: IO[bytes], header: list[str], rows: Rows) -> int:
    import io

    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    text.write("\ufeff")  # Excel opens Chinese text as UTF-8 then
    writer = csv.writer(text)
    writer.writerow([safe_cell(h) for h in header])
    count = 0
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
        count += 1
    text.flush()
    text.detach()
    return count


def _write_xlsx(out: IO[bytes], sheet: str, header: list[str], rows: Rows) -> int:
    import xlsxwriter  # type: ignore[import-untyped]

    book = xlsxwriter.Workbook(out, {**XLSX_OPTIONS, "in_memory": False})
    page = book.add_worksheet(sheet[:31])
    page.write_row(0, 0, [safe_cell(h) for h in header], book.add_format({"bold": True}))
    count = 0
    for i, row in enumerate(rows, start=1):
        for j, value in enumerate(row):
            value = safe_cell(value)
            if isinstance(value, str):
                page.write_string(i, j, value)
            elif value is not None:
                page.write(i, j, value)
        count += 1
    book.close()
    return count


def path_format(path: Path, fmt: str | None) -> str:
    """The format asked for, else the file's suffix."""
    return (fmt or path.suffix.lstrip(".")).lower()


__all__ = ["FORMATS", "KINDS", "do_export", "path_format"]
