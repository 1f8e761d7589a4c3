"""Enrolment in an activity's issues (F22): from the dashboard, the API, a list or a form
tool's CSV export, and check-ins imported from a CSV. Blacklisted members are refused with
the reason; enrolments append ``enrolled`` member events, so segments and lifecycle
analytics see them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, insert, select, update

from qunyun.adapters.storage.tables import (
    enrolments,
    members,
)
from qunyun.clock import utcnow
from qunyun.domain.activities import (
    parse_yuan,
    yuan,
)
from qunyun.domain.history import MemberEventKind
from qunyun.domain.staff import Permission
from qunyun.i18n import InvalidValue
from qunyun.services import audit, history
from qunyun.services.activities import (
    activity_row,
    check_on_error,
    fail_or_keep,
    parse_time,
    read_sheet,
    require_live_members,
)
from qunyun.services.blacklist import Refused, enrol_refusals
from qunyun.services.checkins import store_checkins_many
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.listing import Columns, Listing, Page, fetch
from qunyun.services.users import Actor

# ---- enrolment ---------------------------------------------------------------------------

def _first_group(activity: Mapping[str, Any]) -> int | None:
    return activity["group_ids"][0] if activity["group_ids"] else None


@dataclass(frozen=True)
class Signup:
    """One sign-up to store: from a page, the API, a list, or a line of a form export."""

    member_id: int
    at: datetime
    channel: str = ""
    deposit_fen: int | None = None  # None: the deposit
    external_ref: str = ""
    line: int = 0


def _require_open(activity: Mapping[str, Any]) -> None:
    if activity["state"] == "settled":
        raise Conflict("{code} is settled; set it back to ended to change it",
                       code=activity['code'])



def _enrol_all(conn: Connection, activity: Mapping[str, Any], signups: Sequence[Signup],
               source: str) -> tuple[list[Signup], list[Signup], list[tuple[Signup, str]]]:
    """The one way sign-ups are stored: (enrolled, already enrolled, refused with reason).

    Blacklisted members and those past the capacity are refused; a member named twice counts
    once. Few statements whatever the number, so a whole form export is one round of writes.
    """
    _require_open(activity)
    ids = list(dict.fromkeys(s.member_id for s in signups))
    status = dict(conn.execute(select(enrolments.c.member_id, enrolments.c.status).where(
        enrolments.c.activity_id == activity["id"], enrolments.c.member_id.in_(ids))).all())
    barred = enrol_refusals(conn, ids, utcnow())  # barred now, whatever the form's date
    room = len(signups)
    if activity["capacity"]:
        room = activity["capacity"] - conn.execute(select(func.count()).where(
            enrolments.c.activity_id == activity["id"],
            enrolments.c.status == "enrolled")).scalar_one()
    fresh: list[Signup] = []
    already: list[Signup] = []
    refused: list[tuple[Signup, str]] = []
    seen: set[int] = set()
    for s in signups:
        if s.member_id in seen or status.get(s.member_id) == "enrolled":
            already.append(s)
        elif s.member_id in barred:
            refused.append((s, barred[s.member_id]))
        elif len(fresh) >= room:
            refused.append((s, f"{activity['code']} is full ({activity['capacity']} places)"))
        else:
            fresh.append(s)
        seen.add(s.member_id)
    for s in fresh:
        values = {"enrolled_at": s.at, "source": source, "channel": s.channel[:128],
                  "deposit_fen": activity["deposit_fen"] if s.deposit_fen is None
                  else s.deposit_fen, "status": "enrolled", "external_ref": s.external_ref[:128]}
        if s.member_id in status:  # cancelled before: enrolled again
            conn.execute(update(enrolments).where(enrolments.c.activity_id == activity["id"],
                                                  enrolments.c.member_id == s.member_id)
                         .values(**values))
        else:
            conn.execute(insert(enrolments).values(activity_id=activity["id"],
                                                   member_id=s.member_id, **values))
    if fresh:
        history.append_many(conn, [{
            "member_id": s.member_id, "group_id": _first_group(activity),
            "kind": MemberEventKind.ENROLLED, "at": s.at,
            "data": {"activity_id": activity["id"], "code": activity["code"]}} for s in fresh])
    return fresh, already, refused


def do_enrol(conn: Connection, *, actor: Actor, activity_id: int | str, member_id: int,
             source: str = "dashboard", channel: str = "", deposit_fen: int | None = None,
             at: datetime | None = None, external_ref: str = "") -> dict[str, Any]:
    actor.require(Permission.OPERATE)
    activity = activity_row(conn, activity_id)
    require_live_members(conn, [member_id])
    _, already, refused = _enrol_all(conn, activity, [Signup(
        member_id=member_id, at=at or utcnow(), channel=channel, deposit_fen=deposit_fen,
        external_ref=external_ref)], source)
    if refused:
        raise Refused(refused[0][1])
    if already:
        raise Conflict("member {member_id} is already enrolled in {code}",
                       member_id=member_id, code=activity['code'])
    audit.record(conn, actor=actor.label, action="activities.enrol", object_type="activity",
                 object_id=activity["id"], detail={"member_id": member_id, "source": source})
    return {"activity_id": activity["id"], "member_id": member_id, "status": "enrolled"}


def do_enrol_many(conn: Connection, *, actor: Actor, activity_id: int | str,
                  member_ids: Sequence[int], source: str = "dashboard", channel: str = "",
                  at: datetime | None = None) -> dict[str, Any]:
    """Enrol many members at once (a segment, a list); each refusal comes with its reason."""
    actor.require(Permission.OPERATE)
    activity = activity_row(conn, activity_id)
    require_live_members(conn, list(member_ids))
    when = at or utcnow()
    fresh, already, refused = _enrol_all(conn, activity, [
        Signup(member_id=int(m), at=when, channel=channel) for m in member_ids], source)
    audit.record(conn, actor=actor.label, action="activities.enrol_many",
                 object_type="activity", object_id=activity["id"],
                 detail={"enrolled": len(fresh), "refused": len(refused), "source": source})
    return {"activity_id": activity["id"], "enrolled": len(fresh), "already": len(already),
            "refused": [{"member_id": s.member_id, "reason": why} for s, why in refused]}


def do_cancel_enrolment(conn: Connection, *, actor: Actor, activity_id: int | str,
                        member_id: int) -> None:
    actor.require(Permission.OPERATE)
    activity = activity_row(conn, activity_id)
    _require_open(activity)
    done = conn.execute(update(enrolments).where(
        enrolments.c.activity_id == activity["id"], enrolments.c.member_id == member_id,
        enrolments.c.status == "enrolled").values(status="cancelled")).rowcount
    if not done:
        raise NotFound("member {member_id} is not enrolled in {code}",
                       member_id=member_id, code=activity['code'])
    audit.record(conn, actor=actor.label, action="activities.cancel_enrolment",
                 object_type="activity", object_id=activity["id"],
                 detail={"member_id": member_id})


ENROLMENT_COLUMNS = Columns(
    sortable={"status": (enrolments.c.status, "desc"), "number": (members.c.number, "asc"),
              "name": (members.c.display_name, "asc"),
              "enrolled_at": (enrolments.c.enrolled_at, "desc"),
              "channel": (enrolments.c.channel, "asc"),
              "deposit": (enrolments.c.deposit_fen, "desc")},
    searched=(members.c.display_name, enrolments.c.channel, enrolments.c.external_ref),
    number=members.c.number, tiebreak=members.c.number.asc())


def page_enrolments(conn: Connection, *, actor: Actor, activity_id: int | str,
                    listing: Listing = Listing(per_page=100)) -> Page:
    """An issue's sign-ups (enrolled first), searched by name, number, channel or form
    reference, with amounts in yuan."""
    actor.require(Permission.VIEW)
    activity = activity_row(conn, activity_id)
    stmt = (select(enrolments, members.c.number, members.c.display_name.label("name"))
            .join(members, members.c.id == enrolments.c.member_id)
            .where(enrolments.c.activity_id == activity["id"]))
    return fetch(conn, stmt, listing, ENROLMENT_COLUMNS, lambda rows: [
        {**r, "deposit": yuan(r["deposit_fen"]),
         "refund": None if r["refund_fen"] is None else yuan(r["refund_fen"])} for r in rows])


def list_enrolments(conn: Connection, *, actor: Actor, activity_id: int | str,
                    limit: int = 500) -> list[dict[str, Any]]:
    return page_enrolments(conn, actor=actor, activity_id=activity_id,
                           listing=Listing(per_page=limit)).rows


def do_import_enrolments(conn: Connection, *, actor: Actor, activity_id: int | str,
                         path: Path | str, tz: ZoneInfo, data: bytes | None = None,
                         on_error: str = "fail", channel: str = "") -> dict[str, Any]:
    """Sign-ups from a form tool's CSV export (one row per person)."""
    actor.require(Permission.OPERATE)
    check_on_error(on_error)
    activity = activity_row(conn, activity_id)
    sheet = read_sheet(path, data, ("time", "deposit", "channel", "ref"))
    name = sheet.table.name
    report: dict[str, Any] = {"file": name, "encoding": sheet.table.encoding,
                              "activity": activity["code"], "rows": 0, "enrolled": 0,
                              "already": 0, "refused": [], "errors": []}
    now = utcnow()
    signups = []
    for line, row in sheet.table.rows:
        report["rows"] += 1
        try:
            member_id = sheet.member(conn, row)
            at = parse_time(sheet.cell(row, "time"), tz, "time") if sheet.cell(
                row, "time") else now
            deposit = parse_yuan(sheet.cell(row, "deposit"), "deposit") if sheet.cell(
                row, "deposit") else None
        except ValueError as exc:
            fail_or_keep(report["errors"], on_error, name, line, exc)
            continue
        signups.append(Signup(member_id=member_id, at=at, deposit_fen=deposit, line=line,
                              channel=sheet.cell(row, "channel") or channel,
                              external_ref=sheet.cell(row, "ref")))
    fresh, already, refused = _enrol_all(conn, activity, signups, "csv")
    numbers = dict(conn.execute(select(members.c.id, members.c.number).where(
        members.c.id.in_([s.member_id for s, _ in refused]))).all()) if refused else {}
    report.update(enrolled=len(fresh), already=len(already), refused=[
        {"line": s.line, "member": numbers[s.member_id], "reason": why} for s, why in refused])
    audit.record(conn, actor=actor.label, action="activities.import_enrolments",
                 object_type="activity", object_id=activity["id"], detail={
                     "file": Path(name).name[:64], "enrolled": report["enrolled"],
                     "refused": len(report["refused"]), "errors": len(report["errors"])})
    return report


def do_import_checkins(conn: Connection, *, actor: Actor, activity_id: int | str,
                       path: Path | str, tz: ZoneInfo, data: bytes | None = None,
                       on_error: str = "fail") -> dict[str, Any]:
    """Check-ins kept elsewhere (a mini-program's export): one row per member and day."""
    actor.require(Permission.OPERATE)
    check_on_error(on_error)
    activity = activity_row(conn, activity_id)
    group_id = _first_group(activity)
    if group_id is None:
        raise InvalidInput("{code}: attach a group first (check-ins belong to one)",
                           code=activity['code'])
    sheet = read_sheet(path, data, ("time",))
    name = sheet.table.name
    if "time" not in sheet.cols:
        raise InvalidInput("{name}: line 1: no date column (date / 日期 / 打卡日期)", name=name)
    enrolled = set(conn.execute(select(enrolments.c.member_id).where(
        enrolments.c.activity_id == activity["id"], enrolments.c.status == "enrolled"))
        .scalars())
    report: dict[str, Any] = {"file": name, "activity": activity["code"], "rows": 0,
                              "checkins": 0, "already": 0, "errors": []}
    valid: list[tuple[int, date, datetime]] = []
    for line, row in sheet.table.rows:
        report["rows"] += 1
        try:
            member_id = sheet.member(conn, row)
            at = parse_time(sheet.cell(row, "time"), tz, "date")
            day = at.astimezone(tz).date()
            if not activity["starts_on"] <= day.isoformat() <= activity["ends_on"]:
                raise InvalidValue("date {day}: outside {code} ({starts_on} – {ends_on})",
                                   day=day, code=activity["code"],
                                   starts_on=activity["starts_on"],
                                   ends_on=activity["ends_on"])
            if member_id not in enrolled:
                raise InvalidValue("member is not enrolled in {code}", code=activity['code'])
        except ValueError as exc:
            fail_or_keep(report["errors"], on_error, name, line, exc)
            continue
        valid.append((member_id, day, at))
    report["checkins"] = store_checkins_many(conn, group_id=group_id, rows=valid,
                                             source="import")
    report["already"] = len(valid) - report["checkins"]
    audit.record(conn, actor=actor.label, action="activities.import_checkins",
                 object_type="activity", object_id=activity["id"], detail={
                     "file": Path(name).name[:64], "checkins": report["checkins"],
                     "errors": len(report["errors"])})
    return report
