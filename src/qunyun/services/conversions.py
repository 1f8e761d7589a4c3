"""Conversions (F23): intention deposits (付定), orders and costs of an activity's issues,
recorded one by one or imported from CSV (idempotent by order number); they append
``deposit`` and ``purchase`` member events and add up to GMV, cost and margin."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, select

from qunyun.adapters.storage.tables import (
    conversions,
    groups,
    memberships,
)
from qunyun.clock import utcnow
from qunyun.domain.activities import (
    CONVERSION_KINDS,
    parse_yuan,
    yuan,
)
from qunyun.domain.staff import Permission
from qunyun.i18n import InvalidValue
from qunyun.services import audit, history
from qunyun.services.activities import (
    activity_row,
    check_groups,
    check_on_error,
    fail_or_keep,
    parse_time,
    read_sheet,
    require_live_members,
)
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.users import Actor

EVENT_OF_KIND = {"deposit": "deposit", "order": "purchase"}
KIND_WORDS = {"deposit": "deposit", "定金": "deposit", "付定": "deposit", "意向金": "deposit",
              "order": "order", "订单": "order", "下单": "order", "购买": "order",
              "cost": "cost", "成本": "cost", "费用": "cost", "支出": "cost"}

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
        raise InvalidValue("kind: one of {conversion_kinds}",
                         conversion_kinds=', '.join(CONVERSION_KINDS))
    if kind != "cost" and member_id is None:
        raise InvalidValue("{kind}: name the member who paid", kind=kind)
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
    activity = activity_row(conn, activity_id) if activity_id is not None else None
    if member_id is not None:
        require_live_members(conn, [member_id])
    if group_id is not None:
        check_groups(conn, [group_id])
    if amount_fen < 0:
        raise InvalidInput("amount: must not be negative")
    try:
        new_id = _record_conversion(
            conn, kind=kind, amount_fen=amount_fen, activity=activity, member_id=member_id,
            group_id=group_id, at=at or utcnow(), channel=channel, note=note,
            external_ref=external_ref, source=source)
    except ValueError as exc:
        raise InvalidInput.wrap(exc) from None
    if new_id is None:
        raise Conflict("order {external_ref} is already recorded", external_ref=external_ref)
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
    check_on_error(on_error)
    default_activity = activity_row(conn, activity_id) if activity_id is not None else None
    if kind is not None and kind not in CONVERSION_KINDS:
        raise InvalidInput("kind: one of {conversion_kinds}",
                           conversion_kinds=', '.join(CONVERSION_KINDS))
    sheet = read_sheet(path, data, ("time", "amount", "channel", "ref", "kind", "activity",
                                "group", "note"), key_required=False)
    name = sheet.table.name
    if "amount" not in sheet.cols:
        raise InvalidInput("{name}: line 1: no amount column (amount / 金额)", name=name)
    if "kind" not in sheet.cols and kind is None:
        raise InvalidInput("{name}: line 1: no kind column (kind / 类型); or pass a kind",
                           name=name)
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
                raise InvalidValue("kind: {word!r} is not deposit/定金, order/订单 or cost/成本",
                                   word=word)
            amount = parse_yuan(sheet.cell(row, "amount"), "amount")
            member_id = sheet.member(conn, row) if sheet.keys and any(
                row[i].strip() for i, _ in sheet.keys if i < len(row)) else None
            code = sheet.cell(row, "activity")
            activity = default_activity
            if code:
                if code not in activities_by_code:
                    try:
                        activities_by_code[code] = activity_row(conn, code)
                    except NotFound:
                        raise InvalidValue("activity {code}: not found", code=code) from None
                activity = activities_by_code[code]
            group_id = _group_ref(conn, sheet.cell(row, "group"))
            at = parse_time(sheet.cell(row, "time"), tz, "time") if sheet.cell(
                row, "time") else now
            new_id = _record_conversion(
                conn, kind=row_kind, amount_fen=amount, activity=activity,
                member_id=member_id, group_id=group_id, at=at,
                channel=sheet.cell(row, "channel"), note=sheet.cell(row, "note"),
                external_ref=sheet.cell(row, "ref") or None, source="csv")
        except ValueError as exc:
            fail_or_keep(report["errors"], on_error, name, line, exc)
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
        if found:
            raise InvalidValue("group {text}: several groups have this name", text=text)
        raise InvalidValue("group {text}: no such group", text=text)
    return int(found[0])
