"""Activity cohorts (F25): where each issue's people came from and where they went.

The issue-level figures (source, series source, previous issue, last seen after, renewal,
retention across issues) are computed by ``domain.activities`` from who enrolled where. This
module reads the store for them and adds what needs the event history:

- **after the activity**, per issue, looking ``after_days`` past its last day (or up to now):
  still in one of its groups (open membership), *active* there (a message or a member event
  in those groups), and churn among participants who took part in no later issue, always
  labelled: *observed* (every membership in its groups ended by a leave or removal we saw —
  the seed's "disappeared from the groups") and, apart from it, *inferred from last seen*
  (still a member by our records but no sign of them anywhere since the issue ended: where
  leaves are invisible, as in WeChat exports, these are the likely leavers);
- **lifecycle** per week or month for the scope's participants: new (first appearance in the
  system in that period — not the window start), returning, resurrecting, dormant;
- **weekly retention**: cohorts by calendar week of first appearance, share active k weeks on.

Weeks and days are the team's (``tz``); SQLite buckets with the zone's current UTC offset.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, func, literal_column, select, union_all

from qunyun.adapters.storage.tables import (
    activities,
    activity_groups,
    activity_series,
    enrolments,
    member_events,
    members,
    memberships,
    messages,
    utcnow,
)
from qunyun.analytics.overview import utc_offset_minutes
from qunyun.domain.activities import (
    Issue,
    day_bounds,
    issue_cohorts,
    lifecycle,
    period_start,
    retention_matrix,
    weekly_retention,
)
from qunyun.domain.staff import Permission
from qunyun.services.activities import series_by_ref
from qunyun.services.errors import InvalidInput
from qunyun.services.users import Actor

GONE_KINDS = ("left", "left_snapshot", "removed", "group_renamed")


def _issues(conn: Connection) -> list[Issue]:
    rows = conn.execute(select(activities.c.id, activities.c.code, activities.c.seq,
                               activities.c.starts_on, activities.c.ends_on,
                               activity_series.c.code.label("series"))
                        .join(activity_series, activity_series.c.id == activities.c.series_id))
    return [Issue(id=r.id, code=r.code, series=r.series, seq=r.seq,
                  starts_on=date.fromisoformat(r.starts_on),
                  ends_on=date.fromisoformat(r.ends_on)) for r in rows]


def _scope_members(scope: list[int]) -> Any:
    return select(enrolments.c.member_id).where(enrolments.c.activity_id.in_(scope),
                                                enrolments.c.status == "enrolled")


def _participation(conn: Connection, scope: list[int] | None) -> dict[int, set[int]]:
    """Issue → members, for every issue the scope's participants took part in."""
    stmt = select(enrolments.c.activity_id, enrolments.c.member_id).where(
        enrolments.c.status == "enrolled")
    if scope is not None:
        stmt = stmt.where(enrolments.c.member_id.in_(_scope_members(scope)))
    out: dict[int, set[int]] = defaultdict(set)
    for activity_id, member_id in conn.execute(stmt):
        out[activity_id].add(member_id)
    return out


def _bucket(conn: Connection, column: Any, tz: ZoneInfo, period: str) -> Any:
    """The team-local start of the week or month a UTC timestamp falls in, as ISO text."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.date_trunc(period, func.timezone(tz.key, column)),
                            literal_column("'YYYY-MM-DD'"))
    shift = f"{utc_offset_minutes(tz):+d} minutes"
    if period == "week":
        return func.date(column, shift, "weekday 0", "-6 days")
    return func.date(column, shift, "start of month")


def _active_periods(conn: Connection, scope: list[int] | None, tz: ZoneInfo, period: str,
                    since: datetime) -> dict[int, set[date]]:
    """Member → the periods they did anything in (a message or a member event)."""
    ev = select(member_events.c.member_id.label("m"),
                _bucket(conn, member_events.c.occurred_at, tz, period).label("p")).where(
        member_events.c.member_id.is_not(None), member_events.c.kind.not_in(GONE_KINDS),
        member_events.c.occurred_at >= since)
    msg = select(messages.c.member_id.label("m"),
                 _bucket(conn, messages.c.sent_at, tz, period).label("p")).where(
        messages.c.member_id.is_not(None), messages.c.sent_at >= since)
    if scope is not None:
        ev = ev.where(member_events.c.member_id.in_(_scope_members(scope)))
        msg = msg.where(messages.c.member_id.in_(_scope_members(scope)))
    both = union_all(ev, msg).subquery()
    out: dict[int, set[date]] = defaultdict(set)
    for m, p in conn.execute(select(both.c.m, both.c.p).distinct()):
        out[m].add(date.fromisoformat(str(p)[:10]))
    return out


def _first_seen(conn: Connection, scope: list[int] | None, tz: ZoneInfo) -> dict[int, date]:
    stmt = select(members.c.id, members.c.first_seen_at)
    if scope is not None:
        stmt = stmt.where(members.c.id.in_(_scope_members(scope)))
    return {r.id: r.first_seen_at.astimezone(tz).date() for r in conn.execute(stmt)}


def _after(conn: Connection, issue: Issue, group_ids: list[int], renewed: set[int],
           participants: set[int], tz: ZoneInfo, after_days: int,
           now: datetime) -> dict[str, Any] | None:
    """Still in the group, active there, churned (observed / inferred) after the issue."""
    _, end = day_bounds(issue.ends_on, tz)
    if now <= end or not participants:
        return None  # still running: nothing to say yet
    until = min(now, end + timedelta(days=after_days))
    people = select(enrolments.c.member_id).where(enrolments.c.activity_id == issue.id,
                                                  enrolments.c.status == "enrolled")
    in_groups = memberships.c.group_id.in_(group_ids)
    still: set[int] = set()
    member_of: set[int] = set()
    active: set[int] = set()
    if group_ids:
        rows = conn.execute(select(memberships.c.member_id, memberships.c.left_at).where(
            in_groups, memberships.c.member_id.in_(people), memberships.c.joined_at <= until))
        for m, left_at in rows:
            member_of.add(m)
            if left_at is None or left_at > until:
                still.add(m)
        window_ev = and_(member_events.c.group_id.in_(group_ids),
                         member_events.c.occurred_at > end, member_events.c.occurred_at <= until,
                         member_events.c.kind.not_in(GONE_KINDS),
                         member_events.c.member_id.in_(people))
        window_msg = and_(messages.c.group_id.in_(group_ids), messages.c.sent_at > end,
                          messages.c.sent_at <= until, messages.c.member_id.in_(people))
        active = set(conn.execute(union_all(
            select(member_events.c.member_id).where(window_ev),
            select(messages.c.member_id).where(window_msg))).scalars())
    last_seen = dict(conn.execute(select(members.c.id, members.c.last_seen_at).where(
        members.c.id.in_(people))).all())
    observed = {m for m in member_of - still if m not in renewed}
    inferred = {m for m in participants - observed - renewed
                if last_seen.get(m) is not None and last_seen[m] <= end}
    n = len(participants)

    def rate(k: int) -> float:
        return round(k / n, 4)

    return {"until": until.astimezone(tz).date().isoformat(), "days": after_days,
            "still_in_group": len(still), "still_in_group_rate": rate(len(still)),
            "active": len(active), "active_rate": rate(len(active)),
            "not_active_in_group": len(still - active),
            "churn_observed": len(observed), "churn_observed_rate": rate(len(observed)),
            "churn_inferred": len(inferred), "churn_inferred_rate": rate(len(inferred))}


def cohort_report(conn: Connection, *, actor: Actor, tz: ZoneInfo,
                  series: str | int | None = None, after_days: int = 21, weeks: int = 8,
                  period: str = "week", now: datetime | None = None,
                  with_activity: bool = True) -> dict[str, Any]:
    """Cohorts of one series (``series`` code or id) or of every issue (None).

    ``with_activity`` adds lifecycle and weekly retention, which read the event history of
    the scope's participants; the issue-level figures need only enrolments.
    """
    actor.require(Permission.VIEW)
    if period not in ("week", "month"):
        raise InvalidInput("period: week or month")
    if not 1 <= after_days <= 365:
        raise InvalidInput("after_days: 1–365")
    if not 1 <= weeks <= 52:
        raise InvalidInput("weeks: 1–52")
    now = now or utcnow()
    issues = _issues(conn)
    series_info: dict[str, Any] | None = None
    scope: list[int] | None = None
    if series is not None:
        row = series_by_ref(conn, series)
        series_info = {"id": row["id"], "code": row["code"], "name": row["name"]}
        scope = [i.id for i in issues if i.series == row["code"]]
    scope_ids = scope if scope is not None else [i.id for i in issues]
    participation = _participation(conn, scope)
    cohorts = issue_cohorts(issues, participation, scope_ids)
    groups_of: dict[int, list[int]] = defaultdict(list)
    for r in conn.execute(select(activity_groups).where(
            activity_groups.c.activity_id.in_(scope_ids))):
        groups_of[r.activity_id].append(r.group_id)
    order_of = {i.id: i.order for i in issues}
    last_order: dict[int, tuple[date, int]] = {}
    for issue_id, people in participation.items():
        for m in people:
            if m not in last_order or order_of[issue_id] > last_order[m]:
                last_order[m] = order_of[issue_id]
    out_issues = []
    for cohort in cohorts:
        item = cohort.as_dict()
        people = participation.get(cohort.issue.id, set())
        renewed = {m for m in people if last_order[m] > cohort.issue.order}
        item["after"] = _after(conn, cohort.issue, groups_of.get(cohort.issue.id, []),
                               renewed, people, tz, after_days, now)
        out_issues.append(item)
    report: dict[str, Any] = {
        "series": series_info, "issues": out_issues,
        "retention": retention_matrix(issues, participation, scope_ids),
        "after_days": after_days, "period": period,
        "participants": len(set().union(*(participation.get(i, set()) for i in scope_ids)))
        if scope_ids else 0}
    if with_activity and cohorts:
        first_day = min(c.issue.starts_on for c in cohorts) - timedelta(days=28)
        since, _ = day_bounds(period_start(first_day, "week"), tz)
        first_seen = _first_seen(conn, scope, tz)
        weekly = _active_periods(conn, scope, tz, "week", since)
        by_period = weekly if period == "week" else _active_periods(conn, scope, tz, period,
                                                                     since)
        for m, day in first_seen.items():  # first appearance counts as activity
            weekly[m].add(period_start(day, "week"))
            if by_period is not weekly:
                by_period[m].add(period_start(day, period))
        end_day = now.astimezone(tz).date()
        report["lifecycle"] = lifecycle(by_period, first_seen, period, first_day, end_day)
        recent = {m: d for m, d in first_seen.items() if d >= first_day}
        report["weekly_retention"] = weekly_retention(weekly, recent, weeks)
    return report


def source_chart(report: dict[str, Any], key: str) -> dict[str, Any]:
    """Stacked bars (one bar per issue, one stack per category) for ``key``: source,
    series_source, previous or last_after — the seed's three charts."""
    cats: list[str] = []
    for item in report["issues"]:
        for c in item[key]:
            if c not in cats:
                cats.append(c)
    return {"x": [i["code"] for i in report["issues"]], "categories": cats,
            "series": [{"name": c, "data": [i[key].get(c, 0) for i in report["issues"]]}
                       for c in cats]}


def issue_in(report: dict[str, Any], code: str | None) -> dict[str, Any] | None:
    """The chosen issue (default: the latest with participants)."""
    items = report["issues"]
    if code:
        return next((i for i in items if i["code"] == code), None)
    with_people = [i for i in items if i["participants"]]
    return with_people[-1] if with_people else None
