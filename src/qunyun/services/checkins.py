"""Check-ins and points (F14): form check-ins, leaderboards per group and period, and
deposit refunds by the number of check-ins (tiers from the group's check-in settings)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from qunyun.adapters.storage.tables import (
    checkins,
    groups,
    members,
    points_ledger,
)
from qunyun.clock import utcnow
from qunyun.domain.automation import RefundTier
from qunyun.domain.history import MemberEventKind
from qunyun.domain.staff import Permission
from qunyun.engine.rules.checkin import next_streak
from qunyun.services import audit, history
from qunyun.services.automation import effective_settings, record_checkin
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.users import Actor

PERIODS = ("day", "week", "month", "all")
METRICS = ("checkins", "points")


def period_start(period: str, today: date) -> date | None:
    if period == "day":
        return today
    if period == "week":
        return today - timedelta(days=today.weekday())
    if period == "month":
        return today.replace(day=1)
    if period == "all":
        return None
    raise InvalidInput("period: one of {periods}", periods=', '.join(PERIODS))


def _group(conn: Connection, group_id: int) -> Any:
    row = conn.execute(select(groups.c.id, groups.c.name).where(groups.c.id == group_id)).first()
    if row is None:
        raise NotFound("group {group_id} not found", group_id=group_id)
    return row


def do_form_checkin(conn: Connection, *, actor: Actor, group_id: int, member_id: int,
                    tz: ZoneInfo, at: datetime | None = None) -> dict[str, Any]:
    """A check-in submitted through a form or the API (not a group message)."""
    actor.require(Permission.OPERATE)
    _group(conn, group_id)
    if conn.execute(select(members.c.id).where(members.c.id == member_id)).first() is None:
        raise NotFound("member {member_id} not found", member_id=member_id)
    at = at or utcnow()
    day = at.astimezone(tz).date()
    streak = store_checkin(conn, group_id=group_id, member_id=member_id, day=day, at=at,
                           source="form")
    if streak is None:
        raise Conflict("member {member_id} already checked in on {day}",
                       member_id=member_id, day=day)
    audit.record(conn, actor=actor.label, action="checkin.form", object_type="member",
                 object_id=member_id, detail={"group_id": group_id, "day": day.isoformat()})
    return {"group_id": group_id, "member_id": member_id, "day": day.isoformat(),
            "streak": streak}


def store_checkin(conn: Connection, *, group_id: int, member_id: int, day: date, at: datetime,
                  source: str) -> int | None:
    """Record a check-in not seen as a group message (a form, an imported sheet); the
    streak continues from the member's latest earlier day. None when the day is taken."""
    last = conn.execute(select(checkins.c.day, checkins.c.streak).where(
        checkins.c.group_id == group_id, checkins.c.member_id == member_id,
        checkins.c.day < day.isoformat()).order_by(checkins.c.day.desc()).limit(1)).first()
    streak = next_streak(last.day if last else None, last.streak if last else 0, day)
    if not record_checkin(conn, group_id=group_id, member_id=member_id, day=day.isoformat(),
                          streak=streak, source=source, at=at):
        return None
    return streak


def store_checkins_many(conn: Connection, *, group_id: int,
                        rows: list[tuple[int, date, datetime]], source: str) -> int:
    """Many check-ins at once (an imported sheet): (member, day, time) rows; days already
    taken are skipped. Streaks continue from each member's latest stored day when the new
    days come after it. Returns how many were stored."""
    if not rows:
        return 0
    members_in = sorted({m for m, _, _ in rows})
    taken: set[tuple[int, str]] = set()
    latest: dict[int, tuple[str, int]] = {}
    for start in range(0, len(members_in), 500):
        chunk = members_in[start:start + 500]
        for r in conn.execute(select(checkins.c.member_id, checkins.c.day, checkins.c.streak)
                              .where(checkins.c.group_id == group_id,
                                     checkins.c.member_id.in_(chunk))
                              .order_by(checkins.c.member_id, checkins.c.day)):
            taken.add((r.member_id, r.day))
            latest[r.member_id] = (r.day, r.streak)
    new_rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for member_id, day, at in sorted(rows):
        key = day.isoformat()
        if (member_id, key) in taken:
            continue
        taken.add((member_id, key))
        last_day, last_streak = latest.get(member_id, (None, 0))
        streak = next_streak(last_day, last_streak, day) if (
            last_day is None or last_day < key) else 1
        latest[member_id] = (key, streak)
        new_rows.append({"group_id": group_id, "member_id": member_id, "day": key, "at": at,
                         "streak": streak, "source": source, "message_id": ""})
        events.append({"member_id": member_id, "group_id": group_id,
                       "kind": MemberEventKind.CHECKIN, "at": at,
                       "data": {"day": key, "streak": streak, "source": source}})
    if new_rows:
        conn.execute(checkins.insert(), new_rows)
        history.append_many(conn, events)
    return len(new_rows)


def leaderboard(conn: Connection, *, actor: Actor, group_id: int, period: str = "week",
                metric: str = "checkins", tz: ZoneInfo, today: date | None = None,
                limit: int = 50) -> dict[str, Any]:
    actor.require(Permission.VIEW)
    group = _group(conn, group_id)
    if metric not in METRICS:
        raise InvalidInput("metric: one of {metrics}", metrics=', '.join(METRICS))
    today = today or utcnow().astimezone(tz).date()
    start = period_start(period, today)
    if metric == "checkins":
        value = func.count().label("value")
        stmt = select(checkins.c.member_id, value, func.max(checkins.c.streak).label("best"),
                      func.max(checkins.c.day).label("last_day")).where(
            checkins.c.group_id == group_id)
        if start is not None:
            stmt = stmt.where(checkins.c.day >= start.isoformat())
        stmt = stmt.group_by(checkins.c.member_id)
    else:
        value = func.sum(points_ledger.c.points).label("value")
        stmt = select(points_ledger.c.member_id, value).where(
            points_ledger.c.group_id == group_id)
        if start is not None:
            begin = datetime.combine(start, datetime.min.time(), tzinfo=tz)
            stmt = stmt.where(points_ledger.c.at >= begin)
        stmt = stmt.group_by(points_ledger.c.member_id)
    sub = stmt.subquery()
    rows = conn.execute(select(sub, members.c.number, members.c.display_name)
                        .join(members, members.c.id == sub.c.member_id)
                        .order_by(sub.c.value.desc(), members.c.number).limit(limit)).mappings()
    ranked = [{"rank": rank, "member_id": row["member_id"], "number": row["number"],
               "name": row["display_name"], "value": int(row["value"] or 0),
               "best_streak": row.get("best")} for rank, row in enumerate(rows, start=1)]
    if metric == "checkins" and ranked:
        # each member's latest check-in, in one query: its streak counts if it is still alive
        latest: dict[int, Any] = {}
        for r in conn.execute(select(checkins.c.member_id, checkins.c.day, checkins.c.streak)
                              .where(checkins.c.group_id == group_id, checkins.c.member_id
                                     .in_([item["member_id"] for item in ranked]))
                              .order_by(checkins.c.member_id, checkins.c.day.desc())):
            latest.setdefault(r.member_id, r)
        alive_from = (today - timedelta(days=1)).isoformat()
        for item in ranked:
            last = latest.get(item["member_id"])
            item["current_streak"] = last.streak if last and last.day >= alive_from else 0
    else:
        for item in ranked:
            item.pop("best_streak")
    return {"group_id": group_id, "group": group.name, "period": period, "metric": metric,
            "from": start.isoformat() if start else None, "to": today.isoformat(),
            "rows": ranked}


def refund_for(count: int, tiers: list[RefundTier]) -> float:
    """Percent refunded for ``count`` check-ins: the best tier reached, else 0."""
    reached = [t.percent for t in tiers if count >= t.min_checkins]
    return max(reached) if reached else 0.0


def parse_tiers(text: str) -> list[RefundTier]:
    """``21:100,15:50`` → tiers (check-ins : percent)."""
    tiers = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        count, sep, percent = part.partition(":")
        try:
            tiers.append(RefundTier(min_checkins=int(count), percent=float(
                percent.rstrip("%"))))
        except (ValueError, TypeError):
            raise InvalidInput("tiers: {part!r} is not COUNT:PERCENT", part=part) from None
        if not sep:
            raise InvalidInput("tiers: {part!r} is not COUNT:PERCENT", part=part)
    return tiers


def refunds(conn: Connection, *, actor: Actor, group_id: int, start: date, end: date,
            deposit: float, tiers: list[RefundTier] | None = None) -> dict[str, Any]:
    """Per member: check-ins between ``start`` and ``end`` (inclusive) and the refund."""
    actor.require(Permission.VIEW)
    group = _group(conn, group_id)
    if end < start:
        raise InvalidInput("end: before start")
    if deposit < 0:
        raise InvalidInput("deposit: must not be negative")
    if tiers is None:
        tiers = effective_settings(conn, group_id).checkin.refund_tiers
    if not tiers:
        raise InvalidInput("tiers: none set for this group (e.g. 21:100,15:50)")
    rows = conn.execute(select(checkins.c.member_id, func.count().label("n"),
                               members.c.number, members.c.display_name)
                        .join(members, members.c.id == checkins.c.member_id)
                        .where(checkins.c.group_id == group_id,
                               checkins.c.day >= start.isoformat(),
                               checkins.c.day <= end.isoformat())
                        .group_by(checkins.c.member_id, members.c.number,
                                  members.c.display_name)
                        .order_by(members.c.number)).all()
    out = []
    for r in rows:
        percent = refund_for(int(r.n), tiers)
        out.append({"member_id": r.member_id, "number": r.number, "name": r.display_name,
                    "checkins": int(r.n), "percent": percent,
                    "refund": round(deposit * percent / 100, 2)})
    return {"group_id": group_id, "group": group.name, "from": start.isoformat(),
            "to": end.isoformat(), "deposit": deposit,
            "tiers": [t.model_dump() for t in tiers], "rows": out,
            "total_refund": round(sum(r["refund"] for r in out), 2)}
