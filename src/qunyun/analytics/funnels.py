"""The lifecycle funnel of an activity (F26): reached → joined → spoke → enrolled → deposit →
purchase, in total, per channel and per group, against the plan's targets; with daily new
and daily active members in the activity's groups.

Counting rules (the window runs from the day sign-up opens to the issue's last day):
- ``reached``: what the team entered per channel (contacts made, posters seen) — qunyun
  cannot observe it;
- ``joined``: distinct members whose membership of one of the issue's groups began in the
  window; their channel is that membership's channel (or the enrolment's when it has one);
- ``spoke``: of those, who sent a message in one of the groups;
- ``enrolled``: enrolments of the issue (any channel, also people who never joined a group);
- ``deposit``: enrolments with a deposit, and intention deposits (付定) for the issue;
- ``purchase``: members with an order for the issue.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from qunyun.adapters.storage.tables import conversions, enrolments, memberships, messages
from qunyun.analytics.overview import local_day
from qunyun.clock import utcnow
from qunyun.domain.activities import FUNNEL_STEPS, day_bounds

UNLABELLED = ""


def _steps(counts: dict[str, int], targets: dict[str, int]) -> list[dict[str, Any]]:
    out = []
    prev: int | None = None
    for step in FUNNEL_STEPS:
        n = counts.get(step, 0)
        target = targets.get(step)
        out.append({"step": step, "count": n,
                    "from_previous": round(n / prev, 4) if prev else None,
                    "target": target,
                    "vs_target": round(n / target, 4) if target else None})
        if step != "reached" or n:  # nothing entered as reached: rates start at joined
            prev = n
    return out


def funnel(conn: Connection, *, tz: ZoneInfo, activity: Mapping[str, Any],
           now: datetime | None = None) -> dict[str, Any]:
    """``activity`` as ``services.activities.access_activity`` gives it (its groups, dates,
    targets): the caller has checked who may see it."""
    gids = activity["group_ids"]
    start, _ = day_bounds(activity["opens_on"], tz)
    _, end = day_bounds(activity["ends_on"], tz)
    now = now or utcnow()
    joined: dict[int, tuple[str, int]] = {}  # member → (channel, group)
    spoke: set[int] = set()
    if gids:
        for r in conn.execute(select(memberships.c.member_id, memberships.c.group_id,
                                     memberships.c.channel, memberships.c.first_message_at)
                              .where(memberships.c.group_id.in_(gids),
                                     memberships.c.joined_at >= start,
                                     memberships.c.joined_at < end)
                              .order_by(memberships.c.joined_at.desc())):
            joined[r.member_id] = (r.channel or UNLABELLED, r.group_id)  # earliest wins
            if r.first_message_at is not None and r.first_message_at < end:
                spoke.add(r.member_id)
    enrolled: dict[int, str] = {}
    deposit: set[int] = set()
    for e in conn.execute(select(enrolments.c.member_id, enrolments.c.channel,
                                 enrolments.c.deposit_fen).where(
            enrolments.c.activity_id == activity["id"], enrolments.c.status == "enrolled")):
        enrolled[e.member_id] = e.channel
        if e.deposit_fen > 0:
            deposit.add(e.member_id)
    purchase: set[int] = set()
    for c in conn.execute(select(conversions.c.member_id, conversions.c.kind).where(
            conversions.c.activity_id == activity["id"], conversions.c.member_id.is_not(None),
            conversions.c.kind.in_(("deposit", "order")))):
        (deposit if c.kind == "deposit" else purchase).add(c.member_id)

    def channel_of(m: int) -> str:
        if m in joined and joined[m][0]:
            return joined[m][0]
        return enrolled.get(m) or UNLABELLED

    reach: dict[str, int] = activity["reach"] or {}
    people = set(joined) | set(enrolled) | deposit | purchase
    per_channel: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_group: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for m in people:
        flags = {"joined": m in joined, "spoke": m in spoke, "enrolled": m in enrolled,
                 "deposit": m in deposit, "purchase": m in purchase}
        ch, grp = per_channel[channel_of(m)], per_group[joined[m][1] if m in joined else None]
        for step, hit in flags.items():
            if hit:
                ch[step] += 1
                grp[step] += 1
    for name, n in reach.items():
        per_channel[name]["reached"] += n
    totals = {"reached": sum(reach.values()), "joined": len(joined), "spoke": len(spoke),
              "enrolled": len(enrolled), "deposit": len(deposit), "purchase": len(purchase)}
    targets: dict[str, int] = activity["targets"] or {}
    return {
        "activity_id": activity["id"], "code": activity["code"], "name": activity["name"],
        "from": activity["opens_on"], "to": activity["ends_on"],
        "steps": _steps(totals, targets),
        "channels": [{"channel": c, "steps": _steps(dict(v), {})}
                     for c, v in sorted(per_channel.items(), key=lambda kv: (
                         -kv[1].get("joined", 0), kv[0]))],
        "groups": [{"group_id": g, "steps": _steps(dict(v), {})}
                   for g, v in sorted(per_group.items(), key=lambda kv: (
                       kv[0] is None, kv[0] or 0))],
        "daily": _daily(conn, activity, tz, start, min(end, now)),
    }


def _daily(conn: Connection, activity: Mapping[str, Any], tz: ZoneInfo, start: datetime,
           end: datetime) -> list[dict[str, Any]]:
    return daily_counts(conn, tz=tz, group_ids=activity["group_ids"],
                        activity_id=activity["id"], start=start, end=end)


def daily_counts(conn: Connection, *, tz: ZoneInfo, group_ids: list[int],
                 activity_id: int | None, start: datetime, end: datetime
                 ) -> list[dict[str, Any]]:
    """Per team-local day in ``[start, end)``: members who joined the groups (``new``),
    distinct speakers (``active``), and for the activity its enrolments, members who paid a
    deposit (an enrolment's or an intention deposit) and members who bought — every day
    present, a day without data as zeros."""
    series: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    if group_ids:
        day = local_day(conn, memberships.c.joined_at, tz, (start, end)).label("d")
        for d, n in conn.execute(select(day, func.count(func.distinct(memberships.c.member_id)))
                                 .where(memberships.c.group_id.in_(group_ids),
                                        memberships.c.joined_at >= start,
                                        memberships.c.joined_at < end).group_by(day)):
            series[str(d)]["new"] = int(n)
        day = local_day(conn, messages.c.sent_at, tz, (start, end)).label("d")
        for d, n in conn.execute(select(day, func.count(func.distinct(messages.c.member_id)))
                                 .where(messages.c.group_id.in_(group_ids),
                                        messages.c.sent_at >= start, messages.c.sent_at < end,
                                        messages.c.member_id.is_not(None)).group_by(day)):
            series[str(d)]["active"] = int(n)
    if activity_id is not None:
        day = local_day(conn, enrolments.c.enrolled_at, tz, (start, end)).label("d")
        paid: dict[str, set[int]] = defaultdict(set)
        for d, member_id, deposit in conn.execute(select(
                day, enrolments.c.member_id, enrolments.c.deposit_fen).where(
                enrolments.c.activity_id == activity_id, enrolments.c.status == "enrolled",
                enrolments.c.enrolled_at >= start, enrolments.c.enrolled_at < end)):
            series[str(d)]["enrolled"] += 1
            if deposit > 0:
                paid[str(d)].add(int(member_id))
        bought: dict[str, set[int]] = defaultdict(set)
        day = local_day(conn, conversions.c.occurred_at, tz, (start, end)).label("d")
        for d, member_id, kind in conn.execute(select(
                day, conversions.c.member_id, conversions.c.kind).where(
                conversions.c.activity_id == activity_id, conversions.c.member_id.is_not(None),
                conversions.c.kind.in_(("deposit", "order")),
                conversions.c.occurred_at >= start, conversions.c.occurred_at < end)):
            (paid if kind == "deposit" else bought)[str(d)].add(int(member_id))
        for d, who in paid.items():
            series[d]["deposit"] = len(who)
        for d, who in bought.items():
            series[d]["purchase"] = len(who)
    out = []
    first = start.astimezone(tz).date()
    last = (end - timedelta(seconds=1)).astimezone(tz).date()
    cur: date = first
    while cur <= last:
        v = series.get(cur.isoformat(), {})
        out.append({"day": cur.isoformat(), **{k: v.get(k, 0) for k in (
            "new", "active", "enrolled", "deposit", "purchase")}})
        cur += timedelta(days=1)
    return out
