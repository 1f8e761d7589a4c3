"""Settlement and money of an issue (F22, F23): each participant's check-ins in the issue's
groups between its first and last day fix the deposit refund; finance gets it as CSV.
GMV, cost and margin per issue and per group."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, func, select, update

from qunyun.adapters.storage.tables import (
    activities,
    checkins,
    conversions,
    enrolments,
    groups,
    members,
    memberships,
)
from qunyun.clock import utcnow
from qunyun.domain.activities import (
    yuan,
)
from qunyun.domain.automation import RefundTier
from qunyun.domain.staff import Permission
from qunyun.services import audit, spreadsheets
from qunyun.services.activities import activity_row
from qunyun.services.checkins import refund_for
from qunyun.services.users import Actor

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
    activity = activity_row(conn, activity_id)
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
    activity = activity_row(conn, activity_id)
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
