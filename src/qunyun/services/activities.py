"""Activity series and issues (F22): what the enrolment, conversion and settlement
modules build on, and the reading of the form tools' CSV exports they share.

A series (X) runs in issues (X1, X2 …) with days, groups, capacity, a price and a deposit
refunded by the number of check-ins. Enrolment (``enrolments``), intention deposits, orders
and costs (``conversions``) and the refund settlement (``settlements``) each have a module.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, func, insert, select, update

from qunyun.adapters.storage.tables import (
    activities,
    activity_groups,
    activity_series,
    conversions,
    enrolments,
    groups,
    members,
)
from qunyun.clock import utcnow
from qunyun.domain.activities import (
    FUNNEL_STEPS,
    STATES,
    check_code,
    parse_yuan,
    yuan,
)
from qunyun.domain.automation import RefundTier
from qunyun.domain.staff import Permission
from qunyun.i18n import InvalidValue
from qunyun.services import audit
from qunyun.services.attributes import (
    KEY_HEADERS,
    CsvTable,
    header_kind,
    lookup_members,
    read_csv_table,
)
from qunyun.services.checkins import parse_tiers
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.users import Actor

EDITABLE = ("name", "opens_on", "starts_on", "ends_on", "capacity", "price_fen",
            "deposit_fen", "refund_tiers", "complete_checkins", "reach", "targets", "state")
ON_ERROR = ("fail", "skip")
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

# ---- series and issues -------------------------------------------------------------------

def _day(value: str | date | None, field: str) -> str:
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value or "").strip()).isoformat()
    except ValueError:
        raise InvalidInput("{field}: {value!r} is not a day like 2026-12-01",
                           field=field, value=value) from None


def fen_of(value: str | float | int | None, field: str) -> int | None:
    """An amount typed in yuan (a form field, a CLI flag, JSON) in fen; empty is None."""
    if value is None or str(value).strip() == "":
        return None
    try:
        return parse_yuan(value, field)
    except ValueError as exc:
        raise InvalidInput.wrap(exc) from None


def _code(value: str, field: str = "code") -> str:
    try:
        return check_code(value, field)
    except ValueError as exc:
        raise InvalidInput.wrap(exc) from None


def series_by_ref(conn: Connection, ref: int | str) -> Any:
    """A series by id or code (X); NotFound names what was asked for."""
    col = activity_series.c.id if isinstance(ref, int) or str(ref).isdigit() else \
        activity_series.c.code
    value = int(ref) if col is activity_series.c.id else str(ref)
    row = conn.execute(select(activity_series).where(col == value)).mappings().first()
    if row is None:
        raise NotFound("series {ref} not found", ref=ref)
    return row


def do_create_series(conn: Connection, *, actor: Actor, code: str, name: str = "",
                     description: str = "") -> int:
    actor.require(Permission.OPERATE)
    code = _code(code)
    if conn.execute(select(activity_series.c.id).where(activity_series.c.code == code)).first():
        raise Conflict("series {code} exists", code=code)
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
        raise InvalidInput("refund_tiers: {exc}", exc=exc) from None


def _counts_map(value: Any, field: str, keys: Sequence[str] | None = None) -> dict[str, int]:
    if not value:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput("{field}: a mapping of name → count", field=field)
    out = {}
    for k, v in value.items():
        k = str(k).strip()
        if keys is not None and k not in keys:
            raise InvalidInput("{field}: {k!r} is not one of {keys}",
                               field=field, k=k, keys=', '.join(keys))
        if not k or len(k) > 128:
            raise InvalidInput("{field}: names are 1–128 characters", field=field)
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise InvalidInput("{field}.{k}: {v!r} is not a whole number",
                               field=field, k=k, v=v) from None
        if n < 0:
            raise InvalidInput("{field}.{k}: must not be negative", field=field, k=k)
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
                raise InvalidInput("{key}: {values!r} is not a whole number",
                                   key=key, values=values[key]) from None
            if out[key] < 0:
                raise InvalidInput("{key}: must not be negative", key=key)
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
            raise InvalidInput("state: one of {states}", states=', '.join(STATES))
        out["state"] = values["state"]
    return out


def _check_days(row: Mapping[str, Any]) -> None:
    if row["ends_on"] < row["starts_on"]:
        raise InvalidInput("ends_on: before starts_on")
    if row["opens_on"] > row["starts_on"]:
        raise InvalidInput("opens_on: after starts_on (sign-up opens before the start)")


def check_groups(conn: Connection, group_ids: Iterable[int]) -> list[int]:
    ids = sorted({int(g) for g in group_ids})
    found = set(conn.execute(select(groups.c.id).where(groups.c.id.in_(ids))).scalars())
    missing = [g for g in ids if g not in found]
    if missing:
        raise NotFound("group {missing} not found", missing=missing[0])
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
        raise InvalidInput("{unknown}: not an activity field", unknown=sorted(unknown)[0])
    s = series_by_ref(conn, series)
    if seq is None:
        seq = int(conn.execute(select(func.coalesce(func.max(activities.c.seq), 0)).where(
            activities.c.series_id == s["id"])).scalar_one()) + 1
    if seq < 1:
        raise InvalidInput("seq: 1 or more")
    code = _code(code or f"{s['code']}{seq}")
    if conn.execute(select(activities.c.id).where(activities.c.series_id == s["id"],
                                                  activities.c.seq == seq)).first():
        raise Conflict("series {code} already has issue {seq}", code=s['code'], seq=seq)
    if conn.execute(select(activities.c.id).where(activities.c.code == code)).first():
        raise Conflict("activity {code} exists", code=code)
    values = _clean({"name": name, "starts_on": starts_on, "ends_on": ends_on, **fields,
                     "opens_on": opens_on or (date.fromisoformat(_day(starts_on, "starts_on"))
                                              - timedelta(days=14))})
    _check_days(values)
    ids = check_groups(conn, group_ids)
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


def activity_row(conn: Connection, ref: int | str) -> dict[str, Any]:
    stmt = select(activities, activity_series.c.code.label("series_code"),
                  activity_series.c.name.label("series_name")).join(
        activity_series, activity_series.c.id == activities.c.series_id)
    if isinstance(ref, int) or str(ref).isdigit():
        stmt = stmt.where(activities.c.id == int(ref))
    else:
        stmt = stmt.where(activities.c.code == str(ref))
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise NotFound("activity {ref} not found", ref=ref)
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
    return activity_row(conn, ref)


def do_update_activity(conn: Connection, *, actor: Actor, activity_id: int,
                       changes: Mapping[str, Any],
                       group_ids: Iterable[int] | None = None) -> dict[str, Any]:
    actor.require(Permission.OPERATE)
    row = activity_row(conn, activity_id)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput("{unknown}: not an activity field", unknown=sorted(unknown)[0])
    values = _clean(changes)
    _check_days({**row, **values})
    if values:
        conn.execute(update(activities).where(activities.c.id == activity_id).values(
            updated_at=utcnow(), **values))
    if group_ids is not None:
        ids = check_groups(conn, group_ids)
        conn.execute(delete(activity_groups).where(activity_groups.c.activity_id == activity_id))
        if ids:
            conn.execute(insert(activity_groups), [{"activity_id": activity_id, "group_id": g}
                                                   for g in ids])
        values["group_ids"] = ids
    audit.record(conn, actor=actor.label, action="activities.update", object_type="activity",
                 object_id=activity_id, detail={k: v for k, v in values.items()})
    return activity_row(conn, activity_id)


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


def require_live_members(conn: Connection, member_ids: Sequence[int]) -> None:
    live = set(conn.execute(select(members.c.id).where(
        members.c.id.in_(member_ids), members.c.merged_into_id.is_(None))).scalars())
    missing = [m for m in member_ids if m not in live]
    if missing:
        raise NotFound("member {missing} not found (or merged into another member)",
                       missing=missing[0])


# ---- imports -----------------------------------------------------------------------------

class Sheet:
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
            if found:
                raise InvalidValue("{what} {value}: several members match", what=what,
                                   value=value)
            raise InvalidValue("{what} {value}: no such member", what=what, value=value)
        raise InvalidValue("no member key (member number / 学号, wxid, unionid or phone)")


def read_sheet(path: Path | str, data: bytes | None, wanted: Iterable[str],
           key_required: bool = True) -> Sheet:
    sheet = Sheet(read_csv_table(path, data), wanted)
    if key_required and not sheet.keys:
        raise InvalidInput("{name}: line 1: no member column; name one of member_number / "
                           "学号 / 会员编号, wxid, unionid, phone / 手机号",
                           name=sheet.table.name)
    return sheet


def parse_time(text: str, tz: ZoneInfo, field: str) -> datetime:
    text = text.strip().replace("/", "-")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidValue("{field}: {text!r} is not a time like 2026-12-01 20:00",
                         field=field, text=text) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value


def check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise InvalidInput("on_error: one of {on_error}", on_error=', '.join(ON_ERROR))


def fail_or_keep(errors: list[dict[str, Any]], on_error: str, name: str, line: int,
                  reason: str | Exception) -> None:
    """Stop the import on a bad row (the reason, if translatable, is translated inside the
    refusal), or keep the row's reason in the report and go on."""
    if on_error == "fail":
        raise InvalidInput("{name}: line {line}: {reason} (nothing was imported)",
                           name=name, line=line, reason=reason)
    errors.append({"file": name, "line": line, "reason": str(reason)})


def repoint_group(conn: Connection, *, old: int, new: int) -> None:
    """A planned group linked to a chat the bot saw first: the activities that ran in the
    plan run in the chat's group (once)."""
    have = set(conn.execute(select(activity_groups.c.activity_id).where(
        activity_groups.c.group_id == new)).scalars())
    conn.execute(delete(activity_groups).where(activity_groups.c.group_id == old,
                                               activity_groups.c.activity_id.in_(have)))
    conn.execute(update(activity_groups).where(activity_groups.c.group_id == old)
                 .values(group_id=new))

