"""Activity cohorts (F25): where each issue's people came from and where they went.

The issue-level figures (source, series source, previous issue, last seen after, renewal,
retention across issues) are defined by the pure functions of ``domain.activities``; this
module counts the same figures in SQL (window functions over the enrolments, so only
per-issue counts leave the database — tests/integration/test_cohort_sql.py holds the two
together) and adds what needs the event history:

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

Weeks and days are the team's (``tz``): PostgreSQL converts with its zone database, SQLite and
the DuckDB mirror add the offset of the zone's span each time falls in (exact across summer
time).

One module on purpose: the report's SQL passes build on each other's common table
expressions.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    Integer,
    String,
    and_,
    case,
    cast,
    column,
    extract,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
    values,
)

from qunyun.adapters.storage.tables import (
    UTCDateTime,
    activities,
    activity_groups,
    activity_series,
    enrolments,
    member_events,
    members,
    memberships,
    messages,
)
from qunyun.analytics.overview import by_span, offset_spans, sqlite_shift
from qunyun.clock import utcnow
from qunyun.domain.activities import (
    NEW,
    NONE,
    Issue,
    IssueCohort,
    chronological,
    day_bounds,
    lifecycle_rows,
    next_in_series,
    overlap_matrix,
    period_start,
    stack_order,
)

GONE_KINDS = ("left", "left_snapshot", "removed", "group_renamed")
EPOCH_MONDAY = date(1970, 1, 5)  # week numbers count from this Monday


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


def _positions() -> Any:
    """Issue id → its place in time (the domain's order: start day, then id) and its
    series, numbered in the database: a VALUES table of 300 issues cost more to build and
    compile than the analytics mirror took to run the statement."""
    place = func.row_number().over(order_by=(activities.c.starts_on, activities.c.id)) - 1
    return select(activities.c.id.label("a"), place.label("pos"),
                  activities.c.series_id.label("s")).cte("pos")


class KeptChanging(Exception):
    """Issues were added or moved on every one of the report's three reads."""


class _Reordered(Exception):
    """The database numbered the issues otherwise than the report read them: an issue was
    added or moved between the two reads."""


def _appearances(pos: Any, scope: list[int] | None) -> Any:
    """Every enrolment of the scope's participants with where the member stood in time:
    first issue overall and in the issue's series, previous issue, last issue overall and in
    the series — window functions, so only counts leave the database."""
    e = select(enrolments.c.activity_id.label("a"), enrolments.c.member_id.label("m"),
               pos.c.pos, pos.c.s)
    if scope is not None:  # from the scope's people to their enrolments (index on member)
        people = _scope_members(scope).distinct().subquery("people")
        e = e.select_from(people).join(enrolments,
                                       enrolments.c.member_id == people.c.member_id)
    # "+ 0" keeps SQLite from driving the join from the small issues table and indexing
    # every enrolment to probe it (SQLite's documented way to disqualify an index)
    e = e.join(pos, pos.c.a == enrolments.c.activity_id + 0).where(
        enrolments.c.status == "enrolled")
    e_ = e.subquery("e")
    by_member, by_series = e_.c.m, (e_.c.m, e_.c.s)
    return select(
        e_.c.a, e_.c.m, e_.c.pos, e_.c.s,
        func.min(e_.c.pos).over(partition_by=by_member).label("first"),
        func.max(e_.c.pos).over(partition_by=by_member).label("last"),
        func.min(e_.c.pos).over(partition_by=by_series).label("sfirst"),
        func.max(e_.c.pos).over(partition_by=by_series).label("slast"),
        func.lag(e_.c.pos).over(partition_by=by_member, order_by=e_.c.pos).label("prev"),
    ).cte("w")


def _flag(cond: Any) -> Any:
    return func.sum(case((cond, 1), else_=0))


def _after_windows(ordered: list[Issue], scope_ids: list[int], tz: ZoneInfo, after_days: int,
                   now: datetime) -> dict[int, tuple[datetime, datetime]]:
    """Issue → (its end, the end of the look-after window) for issues that have ended."""
    wanted = set(scope_ids)
    out = {}
    for issue in ordered:
        _, end = day_bounds(issue.ends_on, tz)
        if issue.id in wanted and now > end:
            out[issue.id] = (end, min(now, end + timedelta(days=after_days)))
    return out


def _after_counts(w: Any, windows: dict[int, tuple[datetime, datetime]],
                  kinds: list[str] | None) -> list[Any]:
    """Per ended issue: still in one of its groups at the window's end, active there in the
    window, churn observed (every membership there ended, no later issue) and inferred (no
    later issue, no sign since the issue ended) — (figure, issue, 0, count) rows.

    One sort instead of look-ups: the participants, each issue's groups' memberships and its
    groups' events and messages inside its window are stacked as (issue, member, flags) rows
    — each read by an index on (group, …) — and folded per (issue, member) with max(). A
    join of those sets would leave SQLite to guess an index for each side (one guess scanned
    the whole set per participant); three correlated look-ups per participant cost 13 s for
    all 300 issues of the bench.
    """
    win = values(column("a", Integer), column("end_at", UTCDateTime()),
                 column("until_at", UTCDateTime()), name="win").data(
        [(a, end, until) for a, (end, until) in windows.items()]).cte("win")
    ag, mb = activity_groups.alias("ag"), memberships.alias("mb")
    # (issue, group, window) and (issue, group, kind, window) as small materialised tables,
    # so each is one (group, [kind,] time) index range on either database: joined to the
    # windows and a kind list, PostgreSQL read every event of the group and filtered the
    # time afterwards (1 s for one series)
    spans = select(win.c.a, ag.c.group_id.label("g"), win.c.end_at, win.c.until_at).join(
        ag, ag.c.activity_id == win.c.a).cte("spans").prefix_with("MATERIALIZED")
    # the events are read per (issue, group, kind) slot where the kinds are known (an index
    # range each), per (issue, group) span filtered by kind on the mirror (no index)
    slots, of_kind = spans, _acting(member_events.c.kind, None)
    if kinds is not None:
        kind = values(column("k", String), name="kinds").data([(k,) for k in kinds]).cte(
            "kinds")
        slots = select(spans, kind.c.k).select_from(spans.join(kind, literal(True))).cte(
            "slots").prefix_with("MATERIALIZED")
        of_kind = member_events.c.kind == slots.c.k
    zero = literal(0)

    def row(a: Any, m: Any, part: Any = zero, renewed: Any = zero, stay: Any = zero,
            active: Any = zero, quiet: Any = zero) -> Any:
        return select(a.label("a"), m.label("m"), part.label("part"), renewed.label("renewed"),
                      stay.label("stay"), active.label("active"), quiet.label("quiet"))

    took_part = row(w.c.a, w.c.m, literal(1), case((w.c.last > w.c.pos, 1), else_=0),
                    quiet=case((members.c.last_seen_at <= win.c.end_at, 1), else_=0)).join(
        win, win.c.a == w.c.a).join(members, members.c.id == w.c.m)
    # 2: still a member at the window's end, 1: was one
    # (memberships from the plain join: from the materialised spans PostgreSQL guessed a
    # sequential scan of every membership)
    stayed = row(win.c.a, mb.c.member_id, stay=case(
        (or_(mb.c.left_at.is_(None), mb.c.left_at > win.c.until_at), 2), else_=1)
    ).select_from(win.join(ag, ag.c.activity_id == win.c.a).join(
        mb, and_(mb.c.group_id == ag.c.group_id, mb.c.joined_at <= win.c.until_at)))
    acted = row(slots.c.a, member_events.c.member_id, active=literal(1)).select_from(
        slots.join(member_events, and_(
            member_events.c.group_id == slots.c.g, of_kind,
            member_events.c.occurred_at > slots.c.end_at,
            member_events.c.occurred_at <= slots.c.until_at)))
    spoke = row(spans.c.a, messages.c.member_id, active=literal(1)).select_from(
        spans.join(messages, and_(messages.c.group_id == spans.c.g,
                                  messages.c.sent_at > spans.c.end_at,
                                  messages.c.sent_at <= spans.c.until_at)))
    stacked = union_all(took_part, stayed, acted, spoke).subquery("stacked")
    flags = select(stacked.c.a, *(func.max(stacked.c[k]).label(k) for k in (
        "renewed", "stay", "active", "quiet"))).group_by(stacked.c.a, stacked.c.m).having(
        func.max(stacked.c.part) == 1).cte("flags").prefix_with("MATERIALIZED")
    observed = and_(flags.c.stay == 1, flags.c.renewed == 0)
    figures = {"n": literal(True), "still": flags.c.stay == 2, "active": flags.c.active == 1,
               "idle": and_(flags.c.stay == 2, flags.c.active == 0), "observed": observed,
               "inferred": and_(flags.c.renewed == 0, ~observed, flags.c.quiet == 1)}
    return [select(literal(name), flags.c.a, literal(0), _flag(cond)).group_by(flags.c.a)
            for name, cond in figures.items()]


AFTER_FIGURES = ("n", "still", "active", "idle", "observed", "inferred")


def _after(counts: Counter[str], until: datetime, tz: ZoneInfo,
           after_days: int) -> dict[str, Any] | None:
    n, still, active, idle, observed, inferred = (counts[k] for k in AFTER_FIGURES)
    if not n:
        return None  # nobody took part: nothing to say

    def rate(k: int) -> float:
        return round(k / n, 4)

    return {"until": until.astimezone(tz).date().isoformat(), "days": after_days,
            "still_in_group": still, "still_in_group_rate": rate(still),
            "active": active, "active_rate": rate(active), "not_active_in_group": idle,
            "churn_observed": observed, "churn_observed_rate": rate(observed),
            "churn_inferred": inferred, "churn_inferred_rate": rate(inferred)}


def _issue_figures(conn: Connection, event_kinds: list[str] | None, ordered: list[Issue],
                   scope_ids: list[int], scope: list[int] | None, tz: ZoneInfo,
                   after_days: int, now: datetime
                   ) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    """The issue-level cohorts, the retention matrix and the participant count, counted in
    the database from the enrolments (one pass of window functions)."""
    code_of_series = dict(conn.execute(select(activity_series.c.id, activity_series.c.code)).all())
    pos = _positions()
    w = _appearances(pos, scope)
    here = w.c.a.in_(scope_ids)
    later = w.alias("later")
    tails = select(w.c.m, w.c.s, w.c.slast).distinct().subquery("tails")  # member, series
    windows = _after_windows(ordered, scope_ids, tz, after_days, now)
    kinds = union_all(
        *(_after_counts(w, windows, event_kinds) if windows else ()),
        select(literal("first"), w.c.a, w.c.first, func.count()).where(here)
        .group_by(w.c.a, w.c.first),
        select(literal("sfirst"), w.c.a, w.c.sfirst, func.count()).where(here)
        .group_by(w.c.a, w.c.sfirst),
        select(literal("prev"), w.c.a, w.c.prev, func.count()).where(here)
        .group_by(w.c.a, w.c.prev),
        select(literal("last"), w.c.a, w.c.last, func.count()).where(here)
        .group_by(w.c.a, w.c.last),
        select(literal("series"), w.c.a, tails.c.s, func.count())
        .join(tails, and_(tails.c.m == w.c.m, tails.c.slast > w.c.pos)).where(here)
        .group_by(w.c.a, tails.c.s),
        select(literal("pair"), w.c.a, later.c.a, func.count())
        .join(later, and_(later.c.m == w.c.m, later.c.pos > w.c.pos))
        .where(here, later.c.a.in_(scope_ids)).group_by(w.c.a, later.c.a),
        select(literal("people"), literal(0), literal(0), func.count(func.distinct(w.c.m)))
        .where(here),
        select(literal("pos"), pos.c.a, pos.c.pos, literal(0)))
    by_pos = {n: i for n, i in enumerate(ordered)}
    tallies: dict[int, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    overlap: dict[tuple[int, int], int] = {}
    participants = 0
    pos_of = {i.id: n for n, i in enumerate(ordered)}
    rows = conn.execute(kinds).all()
    if {a: key for kind, a, key, _ in rows if kind == "pos"} != pos_of:
        raise _Reordered
    for kind, a, key, n in rows:
        if kind == "pos":
            continue
        if kind in AFTER_FIGURES:
            tallies[a]["after"][kind] = n
        elif kind == "people":
            participants = n
        elif kind == "pair":
            overlap[(a, key)] = n
        elif kind == "series":
            tallies[a]["to_series"][code_of_series[key]] += n
        elif kind == "prev":
            tallies[a]["previous"][NEW if key is None else by_pos[key].code] += n
        elif kind == "last":
            tallies[a]["last_after"][NONE if key == pos_of[a] else by_pos[key].code] += n
        else:
            label = NEW if key == pos_of[a] else by_pos[key].code
            tallies[a]["source" if kind == "first" else "series_source"][label] += n
    siblings: dict[str, list[Issue]] = defaultdict(list)
    for issue in ordered:
        siblings[issue.series].append(issue)
    wanted = set(scope_ids)
    items = []
    sizes: dict[int, int] = {}
    for issue in ordered:
        if issue.id not in wanted:
            continue
        t = tallies[issue.id]
        sizes[issue.id] = size = sum(t["source"].values())
        nxt = next_in_series(siblings[issue.series], issue)
        cohort = IssueCohort(
            issue=issue, participants=size, source=stack_order(t["source"], ordered),
            series_source=stack_order(t["series_source"], ordered),
            previous=stack_order(t["previous"], ordered),
            last_after=stack_order(t["last_after"], ordered),
            next_in_series=nxt.code if nxt else None,
            renewed_next=overlap.get((issue.id, nxt.id), 0) if nxt else 0,
            renewed_any=size - t["last_after"].get(NONE, 0),
            to_series=dict(sorted(t["to_series"].items())))
        item = cohort.as_dict()
        window = windows.get(issue.id)
        item["after"] = _after(t["after"], window[1], tz, after_days) if window else None
        items.append(item)
    return items, overlap_matrix(ordered, sizes, overlap, scope_ids), participants


def activity_kinds(conn: Connection) -> list[str] | None:
    """The member event kinds in the store that show a member doing something (not leaving).

    Read by skipping along the (kind, member, time) index — one seek per kind — so the
    activity scans can say ``kind IN (...)`` and read that covering index alone instead of
    fetching every event row to test ``kind NOT IN (...)``. None on the analytics mirror:
    it has no index, and finding the kinds would be one more scan of every event.
    """
    if conn.dialect.name == "duckdb":
        return None
    kinds: list[str] = []
    while True:
        stmt = select(func.min(member_events.c.kind))
        if kinds:
            stmt = stmt.where(member_events.c.kind > kinds[-1])
        kind = conn.execute(stmt).scalar()
        if kind is None:
            return [k for k in kinds if k not in GONE_KINDS]
        kinds.append(kind)


def _acting(kind: Any, kinds: list[str] | None) -> Any:
    """A member event of ``kind`` shows the member doing something: one of ``kinds``
    (:func:`activity_kinds`), or any kind but leaving where they are None."""
    return kind.not_in(GONE_KINDS) if kinds is None else kind.in_(kinds)


def _period_number(conn: Connection, column: Any, tz: ZoneInfo, period: str,
                   spans: list[tuple[datetime, int]]) -> Any:
    """The team-local week (Mondays since 1970-01-05) or month (year × 12 + month − 1) a
    UTC timestamp falls in, as an integer, so "the period before" is ``p − 1``.

    PostgreSQL converts with its zone database. DuckDB (the analytics mirror) and SQLite
    add the offset of the zone's span the time falls in (``spans``, from
    :func:`offset_spans`): exact inside the spans, and ICU's per-row conversion cost DuckDB
    6× the arithmetic."""
    if conn.dialect.name == "postgresql":
        local = func.timezone(tz.key, column)
        if period == "week":
            return cast(func.floor((extract("epoch", local) - 345600) / 604800), Integer)
        return cast(extract("year", local) * 12 + extract("month", local) - 1, Integer)
    if conn.dialect.name == "duckdb":
        if period == "week":
            seconds = extract("epoch", column) + by_span(column, spans)
            return cast(func.floor((seconds - 345600) / 604800), Integer)
        micros = func.epoch_us(column) + by_span(column, spans, lambda s: s * 1_000_000)
        local = func.make_timestamp(micros)
        return cast(extract("year", local) * 12 + extract("month", local) - 1, Integer)
    shift = sqlite_shift(column, spans)
    if period == "week":  # julianday of 1970-01-05 00:00 is 2440591.5
        return cast((func.julianday(column, shift) - 2440591.5) / 7, Integer)
    return cast(func.strftime("%Y", column, shift), Integer) * 12 + cast(
        func.strftime("%m", column, shift), Integer) - 1


def _number(day: date, period: str) -> int:
    if period == "week":
        return (day - EPOCH_MONDAY).days // 7
    return day.year * 12 + day.month - 1


def _start_of(n: int, period: str) -> date:
    if period == "week":
        return EPOCH_MONDAY + timedelta(days=7 * n)
    return date(n // 12, n % 12 + 1, 1)


def _activity(conn: Connection, event_kinds: list[str] | None, scope: list[int] | None,
              tz: ZoneInfo, period: str, since: datetime, first_day: date, end_day: date, weeks: int
              ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Lifecycle per period (and, for weeks, retention by week of first appearance) from
    the distinct (member, period) pairs with a message or member event — first appearance
    counting as activity — numbered and compared in the database."""
    recent = day_bounds(first_day, tz)[0]
    # times more than two months outside the report's periods take the nearest span's
    # offset: an hour cannot move them into those periods, and only there do periods count
    spans = offset_spans(tz, since - timedelta(days=62),
                         day_bounds(end_day, tz)[1] + timedelta(days=62))

    def number(column: Any) -> Any:
        return _period_number(conn, column, tz, period, spans)

    # "+ 0": the sort below would otherwise be pushed into this scan and SQLite would read
    # the (member, time) index in member order, fetching every event row for its kind,
    # instead of the covering (kind, member, time) index
    ev = select((member_events.c.member_id + 0).label("m"),
                number(member_events.c.occurred_at).label("p"),
                literal(0).label("f")).where(member_events.c.member_id.is_not(None),
                                             _acting(member_events.c.kind, event_kinds),
                                             member_events.c.occurred_at >= since)
    msg = select(messages.c.member_id.label("m"),
                 number(messages.c.sent_at).label("p"),
                 literal(0).label("f")).where(messages.c.member_id.is_not(None),
                                              messages.c.sent_at >= since)
    # f marks the first appearance: 2 when it falls in the window (a retention cohort)
    first = select(members.c.id.label("m"),
                   number(members.c.first_seen_at).label("p"),
                   case((members.c.first_seen_at >= recent, 2), else_=1).label("f"))
    if scope is not None:
        ev = ev.where(member_events.c.member_id.in_(_scope_members(scope)))
        msg = msg.where(messages.c.member_id.in_(_scope_members(scope)))
        first = first.where(members.c.id.in_(_scope_members(scope)))
    acts = union_all(ev, msg, first).subquery("acts")
    # One sort, no GROUP BY: each member's rows in period order, the first-appearance row
    # first within its period, so the first row of every (member, period) carries that
    # period's f and lag gives the member's previous active period; the member's cohort
    # period (f = 2) is the partition's max, no running frame — rows before it fall outside
    # 0..weeks below, as they did when a running max left them NULL (a framed aggregate cost
    # DuckDB ~15 ms of the window's 100). Then one small aggregate.
    by, order = acts.c.m, (acts.c.p, acts.c.f.desc())
    rows_ = select(acts.c.m, acts.c.p, acts.c.f,
                   func.lag(acts.c.p).over(partition_by=by, order_by=order).label("prv"),
                   func.max(case((acts.c.f == 2, acts.c.p))).over(
                       partition_by=by).label("fp")).subquery("ordered")
    seq = select(rows_).where(or_(rows_.c.prv.is_(None), rows_.c.prv != rows_.c.p)
                              ).subquery("seq")  # one row per (member, period)
    p0, pn = _number(first_day, period), _number(end_day, period)
    new = seq.c.f > 0
    before = and_(seq.c.prv == seq.c.p - 1, seq.c.p > p0)
    offset = seq.c.p - seq.c.fp
    kept_in = (case((offset.between(0, weeks), seq.c.fp)) if period == "week"
               else cast(null(), Integer))  # not a bound None: DuckDB refuses one in GROUP BY
    figures = select(seq.c.p, kept_in.label("fp"), func.count(), _flag(new),
                     _flag(and_(~new, before)), _flag(and_(~new, ~before)),
                     _flag(seq.c.prv == seq.c.p - 1), _flag(seq.c.f == 2)
                     ).group_by(seq.c.p, kept_in)
    counts: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    active: Counter[int] = Counter()  # members active per period
    stayed: Counter[int] = Counter()  # ... who were active in the period before too
    cohorts: Counter[int] = Counter()
    kept: dict[tuple[int, int], int] = {}
    for p, fp, n, new_n, returning, resurrecting, stay, cohort in conn.execute(figures).all():
        active[p] += n
        stayed[p] += stay
        cohorts[p] += cohort
        if p0 <= p <= pn:
            c = counts[_start_of(p, period)]
            c[0] += new_n
            c[1] += returning
            c[2] += resurrecting
        if fp is not None:
            kept[(fp, p - fp)] = n
    for q in range(p0 + 1, pn + 1):  # dormant: active the period before, not in this one
        if gone := active[q - 1] - stayed[q]:
            counts[_start_of(q, period)][3] = gone
    cohorts = Counter({p: n for p, n in cohorts.items() if n})
    rows = lifecycle_rows({p: (c[0], c[1], c[2], c[3]) for p, c in counts.items()}, period,
                          first_day, end_day)
    if period != "week":
        return rows, None
    return rows, {"offsets": list(range(weeks + 1)), "rows": [
        {"week": _start_of(fp, "week").isoformat(), "members": n,
         "cells": [round(kept.get((fp, k), 0) / n, 4) for k in range(weeks + 1)]}
        for fp, n in sorted(cohorts.items())]}


def cohort_report(conn: Connection, *, tz: ZoneInfo, series: Mapping[str, Any] | None = None,
                  after_days: int = 21, weeks: int = 8, period: str = "week",
                  now: datetime | None = None, with_activity: bool = True) -> dict[str, Any]:
    """Cohorts of one series (its stored row: id, code, name) or of every issue (None);
    ``period`` week or month. Raises ``KeptChanging`` when issues kept being added or moved
    while it read them.

    ``with_activity`` adds lifecycle and weekly retention, which read the event history of
    the scope's participants; the issue-level figures need only enrolments.
    """
    now = now or utcnow()
    series_info: dict[str, Any] | None = None
    event_kinds = activity_kinds(conn)  # once: an index seek per kind
    for _ in range(3):  # read again when an issue was added or moved meanwhile
        ordered = chronological(_issues(conn))
        scope: list[int] | None = None
        if series is not None:
            series_info = {"id": series["id"], "code": series["code"], "name": series["name"]}
            scope = [i.id for i in ordered if i.series == series["code"]]
        scope_ids = scope if scope is not None else [i.id for i in ordered]
        try:
            items, retention, participants = (
                _issue_figures(conn, event_kinds, ordered, scope_ids, scope, tz, after_days,
                               now) if scope_ids else ([], overlap_matrix([], {}, {}, []), 0))
            break
        except _Reordered:
            continue
    else:
        raise KeptChanging
    report: dict[str, Any] = {
        "series": series_info, "issues": items, "retention": retention,
        "after_days": after_days, "period": period, "participants": participants}
    if with_activity and items:
        first_day = min(date.fromisoformat(i["starts_on"]) for i in items) - timedelta(days=28)
        since, _ = day_bounds(period_start(first_day, "week"), tz)
        end_day = now.astimezone(tz).date()
        report["lifecycle"], weekly = _activity(conn, event_kinds, scope, tz, period, since,
                                                first_day, end_day, weeks)
        if weekly is None:  # monthly lifecycle: the retention table is still by week
            _, weekly = _activity(conn, event_kinds, scope, tz, "week", since, first_day, end_day,
                                  weeks)
        report["weekly_retention"] = weekly
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
