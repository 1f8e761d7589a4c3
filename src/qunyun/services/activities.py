"""Activity series and issues (F22) and conversions (F23).

A series (X) runs in issues (X1, X2 …) with days, groups, capacity, a price and a deposit
refunded by the number of check-ins. Members enrol from the dashboard, the API or a form
tool's CSV export; blacklisted members are refused with the reason. Settlement counts each
participant's check-ins in the issue's groups between its first and last day and fixes the
refund; finance gets it as CSV. Intention deposits (付定), orders and costs are conversions,
recorded one by one or imported from CSV (idempotent by order number), and add up to GMV,
cost and margin per issue and per group.

Enrolments and conversions also append member events (``enrolled``, ``deposit``,
``purchase``), so segments ("events.enrolled >= 2") and lifecycle analytics see them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, func, insert, select, update

from qunyun.adapters.storage.tables import (
    activities,
    activity_groups,
    activity_series,
    checkins,
    conversions,
    enrolments,
    groups,
    members,
    memberships,
    utcnow,
)
from qunyun.domain.activities import (
    CONVERSION_KINDS,
    FUNNEL_STEPS,
    STATES,
    check_code,
    parse_yuan,
    yuan,
)
from qunyun.domain.automation import RefundTier
from qunyun.domain.history import MemberEventKind
from qunyun.domain.staff import Permission
from qunyun.services import audit, history, spreadsheets
from qunyun.services.attributes import (
    KEY_HEADERS,
    CsvTable,
    header_kind,
    lookup_members,
    read_csv_table,
)
from qunyun.services.blacklist import Refused, enrol_refusals
from qunyun.services.checkins import parse_tiers, refund_for, store_checkins_many
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.users import Actor

EDITABLE = ("name", "opens_on", "starts_on", "ends_on", "capacity", "price_fen",
            "deposit_fen", "refund_tiers", "complete_checkins", "reach", "targets", "state")
ON_ERROR = ("fail", "skip")
EVENT_OF_KIND = {"deposit": "deposit", "order": "purchase"}
# column headers accepted in imports, beside the member key columns of attributes
COLUMNS: dict[str, tuple[str, ...]] = {
    "time": ("time", "enrolled_at", "at", "date", "day", "提交时间", "报名时间", "填写时间",
             "时间", "日期", "打卡日期", "打卡时间", "下单时间", "支付时间"),
    "deposit": ("deposit", "押金", "支付押金"),
    "amount": ("amount", "金额", "实付金额", "订单金额", "支付金额"),
    "channel": ("channel", "渠道", "来源"),
    "ref": ("ref", "order_id", "submission", "序号", "提交序号", "订单号", "订单编号"),
    "kind": ("kind", "type", "类型"),
    "activity": ("activity", "活动", "期次"),
    "group": ("group", "群", "群名", "社群"),
    "note": ("note", "备注"),
}
KIND_WORDS = {"deposit": "deposit", "定金": "deposit", "付定": "deposit", "意向金": "deposit",
              "order": "order", "订单": "order", "下单": "order", "购买": "order",
              "cost": "cost", "成本": "cost", "费用": "cost", "支出": "cost"}


# ---- series and issues -------------------------------------------------------------------

def _day(value: str | date | None, field: str) -> str:
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value or "").strip()).isoformat()
    except ValueError:
        raise InvalidInput(f"{field}: {value!r} is not a day like 2026-12-01") from None


def fen_of(value: str | float | int | None, field: str) -> int | None:
    """An amount typed in yuan (a form field, a CLI flag, JSON) in fen; empty is None."""
    if value is None or str(value).strip() == "":
        return None
    try:
        return parse_yuan(value, field)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def _code(value: str, field: str = "code") -> str:
    try:
        return check_code(value, field)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def series_by_ref(conn: Connection, ref: int | str) -> Any:
    """A series by id or code (X); NotFound names what was asked for."""
    col = activity_series.c.id if isinstance(ref, int) or str(ref).isdigit() else \
        activity_series.c.code
    value = int(ref) if col is activity_series.c.id else str(ref)
    row = conn.execute(select(activity_series).where(col == value)).mappings().first()
    if row is None:
        raise NotFound(f"series {ref} not found")
    return row


def do_create_series(conn: Connection, *, actor: Actor, code: str, name: str = "",
                     description: str = "") -> int:
    actor.require(Permission.OPERATE)
    code = _code(code)
    if conn.execute(select(activity_series.c.id).where(activity_series.c.code == code)).first():
        raise Conflict(f"series {code} exists")
    new_id = conn.execute(insert(activity_series).values(
        code=code, name=name.strip()[:200] or code, description=description,
        created_at=utcnow()).returning(activity_series.c.id)).scalar_one()
    audit.record(conn, actor=actor.label, action="activities.series_create",
                 object_type="series", object_id=new_id, detail={"code": code})
    return int(new_id)


def _tiers(value: Any) -> list[dict[str, Any]]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [t.model_dump() for t in parse_tiers(value)]
    try:
        return [RefundTier.model_validate(t).model_dump() for t in value]
    except ValueError as exc:
        raise InvalidInput(f"refund_tiers: {exc}") from None


def _counts_map(value: Any, field: str, keys: Sequence[str] | None = None) -> dict[str, int]:
    if not value:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{field}: a mapping of name → count")
    out = {}
    for k, v in value.items():
        k = str(k).strip()
        if keys is not None and k not in keys:
            raise InvalidInput(f"{field}: {k!r} is not one of {', '.join(keys)}")
        if not k or len(k) > 128:
            raise InvalidInput(f"{field}: names are 1–128 characters")
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise InvalidInput(f"{field}.{k}: {v!r} is not a whole number") from None
        if n < 0:
            raise InvalidInput(f"{field}.{k}: must not be negative")
        out[k] = n
    return out


def _clean(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the editable fields present in ``values``."""
    out: dict[str, Any] = {}
    for key in ("opens_on", "starts_on", "ends_on"):
        if key in values:
            out[key] = _day(values[key], key)
    for key in ("capacity", "complete_checkins", "price_fen", "deposit_fen"):
        if key in values:
            try:
                out[key] = int(values[key] or 0)
            except (TypeError, ValueError):
                raise InvalidInput(f"{key}: {values[key]!r} is not a whole number") from None
            if out[key] < 0:
                raise InvalidInput(f"{key}: must not be negative")
    if "name" in values:
        out["name"] = str(values["name"] or "").strip()[:200]
    if "refund_tiers" in values:
        out["refund_tiers"] = _tiers(values["refund_tiers"])
    if "reach" in values:
        out["reach"] = _counts_map(values["reach"], "reach")
    if "targets" in values:
        out["targets"] = _counts_map(values["targets"], "targets", FUNNEL_STEPS)
    if "state" in values:
        if values["state"] not in STATES:
            raise InvalidInput(f"state: one of {', '.join(STATES)}")
        out["state"] = values["state"]
    return out


def _check_days(row: Mapping[str, Any]) -> None:
    if row["ends_on"] < row["starts_on"]:
        raise InvalidInput("ends_on: before starts_on")
    if row["opens_on"] > row["starts_on"]:
        raise InvalidInput("opens_on: after starts_on (sign-up opens before the start)")


def _check_groups(conn: Connection, group_ids: Iterable[int]) -> list[int]:
    ids = sorted({int(g) for g in group_ids})
    found = set(conn.execute(select(groups.c.id).where(groups.c.id.in_(ids))).scalars())
    missing = [g for g in ids if g not in found]
    if missing:
        raise NotFound(f"group {missing[0]} not found")
    return ids


def do_create_activity(conn: Connection, *, actor: Actor, series: int | str,
                       starts_on: str | date, ends_on: str | date, name: str = "",
                       seq: int | None = None, code: str | None = None,
                       opens_on: str | date | None = None, group_ids: Iterable[int] = (),
                       **fields: Any) -> int:
    """A new issue of ``series``; number and code default to the next (X3 after X2)."""
    actor.require(Permission.OPERATE)
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"{sorted(unknown)[0]}: not an activity field")
    s = series_by_ref(conn, series)
    if seq is None:
        seq = int(conn.execute(select(func.coalesce(func.max(activities.c.seq), 0)).where(
            activities.c.series_id == s["id"])).scalar_one()) + 1
    if seq < 1:
        raise InvalidInput("seq: 1 or more")
    code = _code(code or f"{s['code']}{seq}")
    if conn.execute(select(activities.c.id).where(activities.c.series_id == s["id"],
                                                  activities.c.seq == seq)).first():
        raise Conflict(f"series {s['code']} already has issue {seq}")
    if conn.execute(select(activities.c.id).where(activities.c.code == code)).first():
        raise Conflict(f"activity {code} exists")
    values = _clean({"name": name, "starts_on": starts_on, "ends_on": ends_on, **fields,
                     "opens_on": opens_on or (date.fromisoformat(_day(starts_on, "starts_on"))
                                              - timedelta(days=14))})
    _check_days(values)
    ids = _check_groups(conn, group_ids)
    now = utcnow()
    values.setdefault("state", "planned")
    values["name"] = values.get("name") or f"{s['name']} 第{seq}期"
    new_id = int(conn.execute(insert(activities).values(
        series_id=s["id"], seq=seq, code=code, created_at=now, updated_at=now,
        **values).returning(activities.c.id)).scalar_one())
    if ids:
        conn.execute(insert(activity_groups), [{"activity_id": new_id, "group_id": g}
                                               for g in ids])
    audit.record(conn, actor=actor.label, action="activities.create", object_type="activity",
                 object_id=new_id, detail={"code": code, "groups": ids})
    return new_id


def _activity_row(conn: Connection, ref: int | str) -> dict[str, Any]:
    stmt = select(activities, activity_series.c.code.label("series_code"),
                  activity_series.c.name.label("series_name")).join(
        activity_series, activity_series.c.id == activities.c.series_id)
    if isinstance(ref, int) or str(ref).isdigit():
        stmt = stmt.where(activities.c.id == int(ref))
    else:
        stmt = stmt.where(activities.c.code == str(ref))
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise NotFound(f"activity {ref} not found")
    data = dict(row)
    data["group_ids"] = group_ids_of(conn, data["id"])
    return data


def group_ids_of(conn: Connection, activity_id: int) -> list[int]:
    return [int(g) for g in conn.execute(select(activity_groups.c.group_id).where(
        activity_groups.c.activity_id == activity_id).order_by(activity_groups.c.group_id))
        .scalars()]


def access_activity(conn: Connection, *, actor: Actor, ref: int | str) -> dict[str, Any]:
    """The one way to fetch an issue, by id or code (X1), for someone who may view it."""
    actor.require(Permission.VIEW)
    return _activity_row(conn, ref)


def do_update_activity(conn: Connection, *, actor: Actor, activity_id: int,
                       changes: Mapping[str, Any],
                       group_ids: Iterable[int] | None = None) -> dict[str, Any]:
    actor.require(Permission.OPERATE)
    row = _activity_row(conn, activity_id)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"{sorted(unknown)[0]}: not an activity field")
    values = _clean(changes)
    _check_days({**row, **values})
    if values:
        conn.execute(update(activities).where(activities.c.id == activity_id).values(
            updated_at=utcnow(), **values))
    if group_ids is not None:
        ids = _check_groups(conn, group_ids)
        conn.execute(delete(activity_groups).where(activity_groups.c.activity_id == activity_id))
        if ids:
            conn.execute(insert(activity_groups), [{"activity_id": activity_id, "group_id": g}
                                                   for g in ids])
        values["group_ids"] = ids
    audit.record(conn, actor=actor.label, action="activities.update", object_type="activity",
                 object_id=activity_id, detail={k: v for k, v in values.items()})
    return _activity_row(conn, activity_id)


def list_series(conn: Connection, *, actor: Actor) -> list[dict[str, Any]]:
    """Every series with its issues (time order) and their sign-up and money totals."""
    actor.require(Permission.VIEW)
    issues = list_activities(conn, actor=actor)
    by_series: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for issue in issues:
        by_series[issue["series_id"]].append(issue)
    out = []
    for s in conn.execute(select(activity_series).order_by(activity_series.c.code)).mappings():
        items = sorted(by_series.get(s["id"], []), key=lambda i: i["seq"])
        out.append({**dict(s), "issues": items,
                    "participants": sum(i["enrolled"] for i in items)})
    return out


def list_activities(conn: Connection, *, actor: Actor,
                    series: int | str | None = None) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    stmt = select(activities, activity_series.c.code.label("series_code")).join(
        activity_series, activity_series.c.id == activities.c.series_id)
    if series is not None:
        stmt = stmt.where(activities.c.series_id == series_by_ref(conn, series)["id"])
    rows = [dict(r) for r in conn.execute(stmt.order_by(activities.c.starts_on,
                                                        activities.c.id)).mappings()]
    enrolled = {r.activity_id: (int(r.n), int(r.dep or 0), int(r.ref or 0)) for r in conn.execute(
        select(enrolments.c.activity_id, func.count().label("n"),
               func.sum(enrolments.c.deposit_fen).label("dep"),
               func.sum(enrolments.c.refund_fen).label("ref"))
        .where(enrolments.c.status == "enrolled").group_by(enrolments.c.activity_id))}
    money: dict[int, dict[str, int]] = defaultdict(dict)
    for r in conn.execute(select(conversions.c.activity_id, conversions.c.kind,
                                 func.sum(conversions.c.amount_fen).label("fen"))
                          .where(conversions.c.activity_id.is_not(None))
                          .group_by(conversions.c.activity_id, conversions.c.kind)):
        money[r.activity_id][r.kind] = int(r.fen or 0)
    group_map: dict[int, list[int]] = defaultdict(list)
    for r in conn.execute(select(activity_groups)):
        group_map[r.activity_id].append(r.group_id)
    for row in rows:
        n, dep, ref = enrolled.get(row["id"], (0, 0, 0))
        m = money.get(row["id"], {})
        row.update(enrolled=n, deposits=yuan(dep), refunds=yuan(ref),
                   gmv=yuan(m.get("order", 0)), cost=yuan(m.get("cost", 0)),
                   group_ids=sorted(group_map.get(row["id"], [])),
                   price=yuan(row["price_fen"]), deposit=yuan(row["deposit_fen"]))
    return rows


# ---- enrolment ---------------------------------------------------------------------------

def _first_group(activity: Mapping[str, Any]) -> int | None:
    return activity["group_ids"][0] if activity["group_ids"] else None


@dataclass(frozen=True)
class Signup:
    """One sign-up to store: from a page, the API, a list, or a line of a form export."""

    member_id: int
    at: datetime
    channel: str = ""
    deposit_fen: int | None = None  # None: the issue's deposit
    external_ref: str = ""
    line: int = 0


def _require_open(activity: Mapping[str, Any]) -> None:
    if activity["state"] == "settled":
        raise Conflict(f"{activity['code']} is settled; set it back to ended to change it")


def _live_members(conn: Connection, member_ids: Sequence[int]) -> None:
    live = set(conn.execute(select(members.c.id).where(
        members.c.id.in_(member_ids), members.c.merged_into_id.is_(None))).scalars())
    missing = [m for m in member_ids if m not in live]
    if missing:
        raise NotFound(f"member {missing[0]} not found (or merged into another member)")


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
    activity = _activity_row(conn, activity_id)
    _live_members(conn, [member_id])
    _, already, refused = _enrol_all(conn, activity, [Signup(
        member_id=member_id, at=at or utcnow(), channel=channel, deposit_fen=deposit_fen,
        external_ref=external_ref)], source)
    if refused:
        raise Refused(refused[0][1])
    if already:
        raise Conflict(f"member {member_id} is already enrolled in {activity['code']}")
    audit.record(conn, actor=actor.label, action="activities.enrol", object_type="activity",
                 object_id=activity["id"], detail={"member_id": member_id, "source": source})
    return {"activity_id": activity["id"], "member_id": member_id, "status": "enrolled"}


def do_enrol_many(conn: Connection, *, actor: Actor, activity_id: int | str,
                  member_ids: Sequence[int], source: str = "dashboard", channel: str = "",
                  at: datetime | None = None) -> dict[str, Any]:
    """Enrol many members at once (a segment, a list); each refusal comes with its reason."""
    actor.require(Permission.OPERATE)
    activity = _activity_row(conn, activity_id)
    _live_members(conn, list(member_ids))
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
    activity = _activity_row(conn, activity_id)
    _require_open(activity)
    done = conn.execute(update(enrolments).where(
        enrolments.c.activity_id == activity["id"], enrolments.c.member_id == member_id,
        enrolments.c.status == "enrolled").values(status="cancelled")).rowcount
    if not done:
        raise NotFound(f"member {member_id} is not enrolled in {activity['code']}")
    audit.record(conn, actor=actor.label, action="activities.cancel_enrolment",
                 object_type="activity", object_id=activity["id"],
                 detail={"member_id": member_id})


def list_enrolments(conn: Connection, *, actor: Actor, activity_id: int | str,
                    limit: int = 500) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    activity = _activity_row(conn, activity_id)
    rows = conn.execute(
        select(enrolments, members.c.number, members.c.display_name.label("name"))
        .join(members, members.c.id == enrolments.c.member_id)
        .where(enrolments.c.activity_id == activity["id"])
        .order_by(enrolments.c.status, members.c.number).limit(limit)).mappings()
    return [{**dict(r), "deposit": yuan(r["deposit_fen"]),
             "refund": None if r["refund_fen"] is None else yuan(r["refund_fen"])} for r in rows]


# ---- imports -----------------------------------------------------------------------------

class _Sheet:
    """A CSV with its member key columns and named columns found by header."""

    def __init__(self, table: CsvTable, wanted: Iterable[str]) -> None:
        self.table = table
        self.keys = [(i, k) for i, h in enumerate(table.header)
                     if (k := header_kind(h, KEY_HEADERS))]
        self.cols = {c: i for c in wanted for i, h in enumerate(table.header)
                     if h.strip().lower() in COLUMNS[c]}

    def cell(self, row: list[str], column: str) -> str:
        i = self.cols.get(column)
        return row[i].strip() if i is not None and i < len(row) else ""

    def member(self, conn: Connection, row: list[str]) -> int:
        """The one member a row names (first filled key column), or ValueError why not."""
        for i, kind in self.keys:
            value = row[i].strip() if i < len(row) else ""
            if not value:
                continue
            found = lookup_members(conn, kind, value)
            if len(found) == 1:
                return found[0]
            what = self.table.header[i]
            raise ValueError(f"{what} {value}: " + ("several members match" if found
                                                      else "no such member"))
        raise ValueError("no member key (member number / 学号, wxid, unionid or phone)")


def _sheet(path: Path | str, data: bytes | None, wanted: Iterable[str],
           key_required: bool = True) -> _Sheet:
    sheet = _Sheet(read_csv_table(path, data), wanted)
    if key_required and not sheet.keys:
        raise InvalidInput(f"{sheet.table.name}: line 1: no member column; name one of "
                           "member_number / 学号 / 会员编号, wxid, unionid, phone / 手机号")
    return sheet


def _parse_time(text: str, tz: ZoneInfo, field: str) -> datetime:
    text = text.strip().replace("/", "-")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{field}: {text!r} is not a time like 2026-12-01 20:00") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value


def _check_mode(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise InvalidInput(f"on_error: one of {', '.join(ON_ERROR)}")


def _fail_or_keep(errors: list[dict[str, Any]], on_error: str, name: str, line: int,
                  reason: str) -> None:
    if on_error == "fail":
        raise InvalidInput(f"{name}: line {line}: {reason} (nothing was imported)")
    errors.append({"file": name, "line": line, "reason": reason})


def do_import_enrolments(conn: Connection, *, actor: Actor, activity_id: int | str,
                         path: Path | str, tz: ZoneInfo, data: bytes | None = None,
                         on_error: str = "fail", channel: str = "") -> dict[str, Any]:
    """Sign-ups from a form tool's CSV export (one row per person)."""
    actor.require(Permission.OPERATE)
    _check_mode(on_error)
    activity = _activity_row(conn, activity_id)
    sheet = _sheet(path, data, ("time", "deposit", "channel", "ref"))
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
            at = _parse_time(sheet.cell(row, "time"), tz, "time") if sheet.cell(
                row, "time") else now
            deposit = parse_yuan(sheet.cell(row, "deposit"), "deposit") if sheet.cell(
                row, "deposit") else None
        except ValueError as exc:
            _fail_or_keep(report["errors"], on_error, name, line, str(exc))
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
    _check_mode(on_error)
    activity = _activity_row(conn, activity_id)
    group_id = _first_group(activity)
    if group_id is None:
        raise InvalidInput(f"{activity['code']}: attach a group first (check-ins belong to one)")
    sheet = _sheet(path, data, ("time",))
    name = sheet.table.name
    if "time" not in sheet.cols:
        raise InvalidInput(f"{name}: line 1: no date column (date / 日期 / 打卡日期)")
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
            at = _parse_time(sheet.cell(row, "time"), tz, "date")
            day = at.astimezone(tz).date()
            if not activity["starts_on"] <= day.isoformat() <= activity["ends_on"]:
                raise ValueError(f"date {day}: outside {activity['code']} "
                                 f"({activity['starts_on']} – {activity['ends_on']})")
            if member_id not in enrolled:
                raise ValueError(f"member is not enrolled in {activity['code']}")
        except ValueError as exc:
            _fail_or_keep(report["errors"], on_error, name, line, str(exc))
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


# ---- conversions -------------------------------------------------------------------------

def _member_group(conn: Connection, member_id: int, group_ids: Sequence[int]) -> int | None:
    if not group_ids:
        return None
    return conn.execute(select(memberships.c.group_id).where(
        memberships.c.member_id == member_id, memberships.c.group_id.in_(group_ids))
        .order_by(memberships.c.joined_at).limit(1)).scalar()


def _record_conversion(conn: Connection, *, kind: str, amount_fen: int,
                       activity: Mapping[str, Any] | None, member_id: int | None,
                       group_id: int | None, at: datetime, channel: str, note: str,
                       external_ref: str | None, source: str) -> int | None:
    """Store one money line; None when its order number is already stored."""
    if kind not in CONVERSION_KINDS:
        raise ValueError(f"kind: one of {', '.join(CONVERSION_KINDS)}")
    if kind != "cost" and member_id is None:
        raise ValueError(f"{kind}: name the member who paid")
    if external_ref and conn.execute(select(conversions.c.id).where(
            conversions.c.external_ref == external_ref)).first():
        return None
    if group_id is None and member_id is not None and activity is not None:
        group_id = _member_group(conn, member_id, activity["group_ids"])
    new_id = int(conn.execute(insert(conversions).values(
        kind=kind, activity_id=activity["id"] if activity else None, group_id=group_id,
        member_id=member_id, amount_fen=amount_fen, occurred_at=at, channel=channel[:128],
        note=note, source=source, external_ref=external_ref or None,
        created_at=utcnow()).returning(conversions.c.id)).scalar_one())
    if member_id is not None and kind in EVENT_OF_KIND:
        history.append(conn, kind=EVENT_OF_KIND[kind], member_id=member_id,
                       group_id=group_id, at=at,
                       data={"amount_fen": amount_fen,
                             "activity_id": activity["id"] if activity else None})
    return new_id


def do_record_conversion(conn: Connection, *, actor: Actor, kind: str, amount_fen: int,
                         activity_id: int | str | None = None, member_id: int | None = None,
                         group_id: int | None = None, at: datetime | None = None,
                         channel: str = "", note: str = "", external_ref: str | None = None,
                         source: str = "dashboard") -> int:
    actor.require(Permission.OPERATE)
    activity = _activity_row(conn, activity_id) if activity_id is not None else None
    if member_id is not None:
        _live_members(conn, [member_id])
    if group_id is not None:
        _check_groups(conn, [group_id])
    if amount_fen < 0:
        raise InvalidInput("amount: must not be negative")
    try:
        new_id = _record_conversion(
            conn, kind=kind, amount_fen=amount_fen, activity=activity, member_id=member_id,
            group_id=group_id, at=at or utcnow(), channel=channel, note=note,
            external_ref=external_ref, source=source)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if new_id is None:
        raise Conflict(f"order {external_ref} is already recorded")
    audit.record(conn, actor=actor.label, action="activities.conversion",
                 object_type="conversion", object_id=new_id,
                 detail={"kind": kind, "amount_fen": amount_fen, "member_id": member_id})
    return new_id


def do_import_conversions(conn: Connection, *, actor: Actor, path: Path | str, tz: ZoneInfo,
                          data: bytes | None = None, activity_id: int | str | None = None,
                          kind: str | None = None, on_error: str = "fail") -> dict[str, Any]:
    """Deposits, orders and costs kept elsewhere (a shop's order export); a row whose order
    number is already stored counts as ``already``, so the same file can come twice."""
    actor.require(Permission.OPERATE)
    _check_mode(on_error)
    default_activity = _activity_row(conn, activity_id) if activity_id is not None else None
    if kind is not None and kind not in CONVERSION_KINDS:
        raise InvalidInput(f"kind: one of {', '.join(CONVERSION_KINDS)}")
    sheet = _sheet(path, data, ("time", "amount", "channel", "ref", "kind", "activity",
                                "group", "note"), key_required=False)
    name = sheet.table.name
    if "amount" not in sheet.cols:
        raise InvalidInput(f"{name}: line 1: no amount column (amount / 金额)")
    if "kind" not in sheet.cols and kind is None:
        raise InvalidInput(f"{name}: line 1: no kind column (kind / 类型); or pass a kind")
    report: dict[str, Any] = {"file": name, "rows": 0, "recorded": 0, "already": 0,
                              "by_kind": {k: 0 for k in CONVERSION_KINDS}, "amount": 0.0,
                              "errors": []}
    activities_by_code: dict[str, dict[str, Any]] = {}
    now = utcnow()
    total = 0
    for line, row in sheet.table.rows:
        report["rows"] += 1
        try:
            word = sheet.cell(row, "kind").lower()
            row_kind = KIND_WORDS.get(word) if word else kind
            if row_kind is None:
                raise ValueError(f"kind: {word!r} is not deposit/定金, order/订单 or cost/成本")
            amount = parse_yuan(sheet.cell(row, "amount"), "amount")
            member_id = sheet.member(conn, row) if sheet.keys and any(
                row[i].strip() for i, _ in sheet.keys if i < len(row)) else None
            code = sheet.cell(row, "activity")
            activity = default_activity
            if code:
                if code not in activities_by_code:
                    try:
                        activities_by_code[code] = _activity_row(conn, code)
                    except NotFound:
                        raise ValueError(f"activity {code}: not found") from None
                activity = activities_by_code[code]
            group_id = _group_ref(conn, sheet.cell(row, "group"))
            at = _parse_time(sheet.cell(row, "time"), tz, "time") if sheet.cell(
                row, "time") else now
            new_id = _record_conversion(
                conn, kind=row_kind, amount_fen=amount, activity=activity,
                member_id=member_id, group_id=group_id, at=at,
                channel=sheet.cell(row, "channel"), note=sheet.cell(row, "note"),
                external_ref=sheet.cell(row, "ref") or None, source="csv")
        except ValueError as exc:
            _fail_or_keep(report["errors"], on_error, name, line, str(exc))
            continue
        if new_id is None:
            report["already"] += 1
            continue
        report["recorded"] += 1
        report["by_kind"][row_kind] += 1
        total += amount
    report["amount"] = yuan(total)
    audit.record(conn, actor=actor.label, action="activities.import_conversions",
                 object_type="file", object_id=Path(name).name[:64],
                 detail={"recorded": report["recorded"], "errors": len(report["errors"])})
    return report


def _group_ref(conn: Connection, text: str) -> int | None:
    if not text:
        return None
    col = groups.c.id if text.isdigit() else groups.c.name
    found = list(conn.execute(select(groups.c.id).where(
        col == (int(text) if text.isdigit() else text))).scalars())
    if len(found) != 1:
        raise ValueError(f"group {text}: " + ("several groups have this name" if found
                                               else "no such group"))
    return int(found[0])


# ---- settlement and money ----------------------------------------------------------------

def completion_threshold(activity: Mapping[str, Any]) -> int:
    """Check-ins that count as completing: set explicitly, else the full-refund tier."""
    if activity["complete_checkins"]:
        return int(activity["complete_checkins"])
    tiers = activity["refund_tiers"] or []
    full = [t["min_checkins"] for t in tiers if t["percent"] >= 100]
    if full:
        return int(min(full))
    return int(max((t["min_checkins"] for t in tiers), default=1)) or 1


def settlement(conn: Connection, *, actor: Actor, activity_id: int | str) -> dict[str, Any]:
    """What settling would fix: per participant, check-ins in the issue's groups and days,
    the refund percent (tiers) and amount, and whether they completed."""
    actor.require(Permission.VIEW)
    activity = _activity_row(conn, activity_id)
    tiers = [RefundTier.model_validate(t) for t in activity["refund_tiers"] or []]
    made: dict[int, int] = {}
    if activity["group_ids"]:
        made = {r.member_id: int(r.n) for r in conn.execute(
            select(checkins.c.member_id, func.count(func.distinct(checkins.c.day)).label("n"))
            .where(checkins.c.group_id.in_(activity["group_ids"]),
                   checkins.c.day >= activity["starts_on"],
                   checkins.c.day <= activity["ends_on"])
            .group_by(checkins.c.member_id))}
    threshold = completion_threshold(activity)
    rows = []
    for r in conn.execute(
            select(enrolments.c.member_id, enrolments.c.deposit_fen, members.c.number,
                   members.c.display_name)
            .join(members, members.c.id == enrolments.c.member_id)
            .where(enrolments.c.activity_id == activity["id"],
                   enrolments.c.status == "enrolled").order_by(members.c.number)):
        n = made.get(r.member_id, 0)
        percent = refund_for(n, tiers) if tiers else 0.0
        refund_fen = round(r.deposit_fen * percent / 100)
        rows.append({"member_id": r.member_id, "number": r.number, "name": r.display_name,
                     "deposit": yuan(r.deposit_fen), "deposit_fen": r.deposit_fen,
                     "checkins": n, "percent": percent, "refund": yuan(refund_fen),
                     "refund_fen": refund_fen, "completed": n >= threshold})
    return {"activity_id": activity["id"], "code": activity["code"],
            "from": activity["starts_on"], "to": activity["ends_on"],
            "tiers": [t.model_dump() for t in tiers], "complete_checkins": threshold,
            "state": activity["state"], "settled_at": activity["settled_at"],
            "participants": len(rows), "completed": sum(1 for r in rows if r["completed"]),
            "deposits": yuan(sum(r["deposit_fen"] for r in rows)),
            "refunds": yuan(sum(r["refund_fen"] for r in rows)), "rows": rows}


def do_settle(conn: Connection, *, actor: Actor, activity_id: int | str) -> dict[str, Any]:
    """Fix every participant's check-ins, refund and completion; the issue becomes settled.
    Settling again (check-ins imported late) recomputes and is audited again."""
    actor.require(Permission.OPERATE)
    plan = settlement(conn, actor=actor, activity_id=activity_id)
    now = utcnow()
    for r in plan["rows"]:
        conn.execute(update(enrolments).where(
            enrolments.c.activity_id == plan["activity_id"],
            enrolments.c.member_id == r["member_id"]).values(
            checkins=r["checkins"], refund_percent=r["percent"], refund_fen=r["refund_fen"],
            completed=r["completed"], settled_at=now))
    conn.execute(update(activities).where(activities.c.id == plan["activity_id"]).values(
        state="settled", settled_at=now, updated_at=now))
    audit.record(conn, actor=actor.label, action="activities.settle", object_type="activity",
                 object_id=plan["activity_id"], detail={
                     "participants": plan["participants"], "completed": plan["completed"],
                     "refunds": plan["refunds"]})
    return {**plan, "state": "settled", "settled_at": now}


def settlement_csv(plan: Mapping[str, Any]) -> str:
    """The refund list for finance (UTF-8 with BOM so Excel opens it in Chinese)."""
    return spreadsheets.csv_text(
        ["活动", "会员编号", "昵称", "押金(元)", "打卡次数", "退还比例(%)", "退款(元)", "完成"],
        ([plan["code"], r["number"], r["name"], f"{r['deposit']:.2f}", r["checkins"],
          f"{r['percent']:g}", f"{r['refund']:.2f}", "是" if r["completed"] else "否"]
         for r in plan["rows"]))


def money(conn: Connection, *, actor: Actor, activity_id: int | str) -> dict[str, Any]:
    """GMV, deposits, refunds, cost and margin of an issue, in total and per group.

    Revenue = sign-up fees + activity deposits kept (not refunded) + orders (GMV); intention
    deposits (付定) are shown but not added, since they turn into orders. Margin = revenue −
    cost. A line without a group is attributed to the member's group among the issue's
    groups; costs without a group stay in "shared".
    """
    actor.require(Permission.VIEW)
    activity = _activity_row(conn, activity_id)
    gids = activity["group_ids"]
    names = dict(conn.execute(select(groups.c.id, groups.c.name).where(groups.c.id.in_(gids)))
                 .all()) if gids else {}
    home: dict[int, int] = {}
    if gids:
        for m in conn.execute(select(memberships.c.member_id, memberships.c.group_id).where(
                memberships.c.group_id.in_(gids)).order_by(memberships.c.joined_at.desc())):
            home[m.member_id] = m.group_id  # the earliest membership wins (written last)

    def blank() -> dict[str, int]:
        return defaultdict(int)

    per: dict[int | None, dict[str, int]] = defaultdict(blank)
    for r in conn.execute(select(enrolments.c.member_id, enrolments.c.deposit_fen,
                                 enrolments.c.refund_fen).where(
            enrolments.c.activity_id == activity["id"], enrolments.c.status == "enrolled")):
        line = per[home.get(r.member_id)]
        line["enrolled"] += 1
        line["fees"] += activity["price_fen"]
        line["deposits"] += r.deposit_fen
        line["refunds"] += r.refund_fen or 0
    for c in conn.execute(select(conversions.c.kind, conversions.c.group_id,
                                 conversions.c.member_id, conversions.c.amount_fen).where(
            conversions.c.activity_id == activity["id"])):
        gid = c.group_id if c.group_id is not None else home.get(c.member_id)
        line = per[gid]
        key = {"deposit": "intention", "order": "gmv", "cost": "cost"}[c.kind]
        line[key] += c.amount_fen
        line[f"{key}_count"] += 1

    def finish(line: Mapping[str, int]) -> dict[str, Any]:
        kept = line["deposits"] - line["refunds"]
        revenue = line["fees"] + kept + line["gmv"]
        margin = revenue - line["cost"]
        return {"enrolled": line["enrolled"], "fees": yuan(line["fees"]),
                "deposits": yuan(line["deposits"]), "refunds": yuan(line["refunds"]),
                "deposits_kept": yuan(kept), "intention_deposits": yuan(line["intention"]),
                "intention_count": line["intention_count"], "orders": line["gmv_count"],
                "gmv": yuan(line["gmv"]), "cost": yuan(line["cost"]),
                "revenue": yuan(revenue), "margin": yuan(margin),
                "margin_rate": round(margin / revenue, 4) if revenue else None}

    total: dict[str, int] = defaultdict(int)
    for line in per.values():
        for k, v in line.items():
            total[k] += v
    by_group = [{"group_id": g, "group": names.get(g, "") if g is not None else "",
                 **finish(line)} for g, line in sorted(per.items(), key=lambda kv: (
                     kv[0] is None, kv[0] or 0))]
    return {"activity_id": activity["id"], "code": activity["code"],
            "settled": activity["state"] == "settled", **finish(total), "groups": by_group}
