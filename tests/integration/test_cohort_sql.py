"""The cohort report counts in SQL (window functions, one pass); here it is checked against
the pure domain functions fed with member sets read row by row — on a random history, on
SQLite and PostgreSQL, for a series and for every issue, weekly and monthly."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import (
    activity_groups,
    enrolments,
    member_events,
    members,
    memberships,
    messages,
)
from qunyun.analytics.cohorts import (
    GONE_KINDS,
    _issue_figures,
    _issues,
    _Reordered,
    activity_kinds,
)
from qunyun.bootstrap import Runtime
from qunyun.domain.activities import (
    chronological,
    day_bounds,
    issue_cohorts,
    lifecycle,
    period_start,
    retention_matrix,
    weekly_retention,
)
from qunyun.services import activities
from qunyun.services import enrolments as enrolments_service
from qunyun.services.ingest import do_ingest_event
from qunyun.services.reports import get_cohort_report
from qunyun.services.users import SYSTEM
from tests.activity_scenario import TZ
from tests.factories import T0, event, raw_join, raw_leave, raw_message

NOW = T0 + timedelta(days=3)
START = datetime(2026, 6, 1, tzinfo=UTC)  # the random history runs from here to T0


def _minutes(t: datetime) -> float:
    return (t - T0).total_seconds() / 60


def build_random(conn: Connection, runtime: Runtime, seed: int) -> None:
    """40 people, 7 issues in 3 series with one group each; people join, talk, leave and
    enrol at random (some enrol in several issues, across series)."""
    rnd = random.Random(seed)
    n = 0

    def ingest(raw: dict[str, Any]) -> int | None:
        return do_ingest_event(conn, event(raw), config=runtime.ingest_config,
                               received_at=NOW).member_id

    people = [f"u{i}" for i in range(40)]
    for s in "ABC":
        activities.do_create_series(conn, actor=SYSTEM, code=s, name=f"系列{s}")
    day = START.date()
    for k in range(7):
        series = "ABCAABC"[k]
        starts = day + timedelta(days=14 * k + rnd.randrange(5))
        ends = starts + timedelta(days=rnd.choice((2, 4, 6)))
        chat = f"chat-{k}"
        ids: dict[str, int] = {}
        if k == 0:  # an old-timer: first seen the week before the window, back in its 1st
            week0 = period_start(starts - timedelta(days=28), "week")
            at = datetime.combine(week0, datetime.min.time(), tzinfo=UTC)
            old = ingest(raw_join("j-old", chat, "old", name="老成员",
                                  minutes=_minutes(at - timedelta(days=3))))
            assert old is not None
            ids["old"] = old
            ingest(raw_message("m-old", chat, "old", "好久不见", minutes=_minutes(
                at + timedelta(days=1, hours=4))))
        for p in rnd.sample(people, rnd.randrange(8, 16)):
            n += 1
            joined = datetime.combine(starts, datetime.min.time(), tzinfo=UTC) - timedelta(
                days=rnd.randrange(1, 4), minutes=n)
            mid = ingest(raw_join(f"j{n}", chat, p, name=p, minutes=_minutes(joined)))
            assert mid is not None
            ids[p] = mid
            for _ in range(rnd.randrange(4)):
                n += 1
                said = joined + timedelta(hours=rnd.randrange(1, 24 * 40))
                if said < T0:
                    ingest(raw_message(f"m{n}", chat, p, "你好", minutes=_minutes(said)))
            if rnd.random() < 0.25:
                n += 1
                gone = joined + timedelta(days=rnd.randrange(3, 30))
                if gone < T0:
                    ingest(raw_leave(f"l{n}", chat, p, minutes=_minutes(gone)))
        gid = conn.execute(select(memberships.c.group_id).where(
            memberships.c.member_id == next(iter(ids.values())))
            .order_by(memberships.c.id.desc())).scalars().first()
        issue = activities.do_create_activity(
            conn, actor=SYSTEM, series=series, starts_on=starts.isoformat(),
            ends_on=ends.isoformat(), group_ids=[gid])
        for mid in ids.values():
            if rnd.random() < 0.8:
                enrolments_service.do_enrol(conn, actor=SYSTEM, activity_id=issue, member_id=mid,
                                    at=datetime.combine(starts, datetime.min.time(),
                                                        tzinfo=UTC) - timedelta(hours=1))


def reference(conn: Connection, series: str | None, period: str,
              with_activity: bool = True, tz: ZoneInfo = TZ) -> dict[str, Any]:
    """The same report from member sets in Python (the pre-SQL implementation)."""
    issues = chronological(_issues(conn))
    scope_ids = [i.id for i in issues if series is None or i.series == series]
    participation: dict[int, set[int]] = defaultdict(set)
    for a, m in conn.execute(select(enrolments.c.activity_id, enrolments.c.member_id)
                             .where(enrolments.c.status == "enrolled")):
        participation[a].add(m)
    scope_people = set().union(*(participation[i] for i in scope_ids))
    last: dict[int, int] = {}
    pos = {i.id: n for n, i in enumerate(issues)}
    for a, ms in participation.items():
        for m in ms:
            last[m] = max(last.get(m, -1), pos[a])
    groups_of: dict[int, set[int]] = defaultdict(set)
    for a, g in conn.execute(select(activity_groups.c.activity_id, activity_groups.c.group_id)):
        groups_of[a].add(g)
    spans = conn.execute(select(memberships.c.member_id, memberships.c.group_id,
                                memberships.c.joined_at, memberships.c.left_at)).all()
    acts = [(r.member_id, r.group_id, r.occurred_at) for r in conn.execute(
        select(member_events.c.member_id, member_events.c.group_id,
               member_events.c.occurred_at).where(member_events.c.kind.not_in(GONE_KINDS),
                                                  member_events.c.member_id.is_not(None)))]
    acts += [(r.member_id, r.group_id, r.sent_at) for r in conn.execute(
        select(messages.c.member_id, messages.c.group_id, messages.c.sent_at).where(
            messages.c.member_id.is_not(None)))]
    seen = {r.id: (r.first_seen_at, r.last_seen_at) for r in conn.execute(select(members))}
    items = []
    for cohort in issue_cohorts(issues, participation, scope_ids):
        item = cohort.as_dict()
        issue, people = cohort.issue, participation.get(cohort.issue.id, set())
        end = day_bounds(issue.ends_on, tz)[1]
        item["after"] = None
        if end < NOW and people:
            until = min(NOW, end + timedelta(days=21))
            gs = groups_of[issue.id]
            member_of = {m for m, g, j, _ in spans if m in people and g in gs and j <= until}
            still = {m for m, g, j, left in spans if m in people and g in gs and j <= until
                     and (left is None or left > until)}
            active = {m for m, g, t in acts if m in people and g in gs and end < t <= until}
            renewed = {m for m in people if last[m] > pos[issue.id]}
            observed = member_of - still - renewed
            inferred = {m for m in people - observed - renewed if seen[m][1] <= end}
            item["after"] = {"still_in_group": len(still), "active": len(active),
                             "not_active_in_group": len(still - active),
                             "churn_observed": len(observed), "churn_inferred": len(inferred)}
        items.append(item)
    out: dict[str, Any] = {"issues": items, "participants": len(scope_people),
                           "retention": retention_matrix(
                               issues, {i: participation[i] for i in scope_ids}, scope_ids)}
    if with_activity:
        who = scope_people if series is not None else set(seen)
        first_day = min(i.starts_on for i in issues if i.id in scope_ids) - timedelta(days=28)
        since = day_bounds(period_start(first_day, "week"), tz)[0]
        first_seen = {m: seen[m][0].astimezone(tz).date() for m in who}
        periods: dict[str, dict[int, set[date]]] = {}
        for per in {period, "week"}:
            got: dict[int, set[date]] = defaultdict(set)
            for m, _g, t in acts:
                if m in who and t >= since:
                    got[m].add(period_start(t.astimezone(tz).date(), per))
            for m, d in first_seen.items():
                got[m].add(period_start(d, per))
            periods[per] = got
        out["lifecycle"] = lifecycle(periods[period], first_seen, period, first_day,
                                     NOW.astimezone(tz).date())
        out["weekly_retention"] = weekly_retention(
            periods["week"], {m: d for m, d in first_seen.items() if d >= first_day}, 8)
    return out


AFTER_KEYS = ("still_in_group", "active", "not_active_in_group", "churn_observed",
              "churn_inferred")
ISSUE_KEYS = ("code", "participants", "new", "source", "series_source", "previous",
              "last_after", "next_in_series", "renewed_next", "renewed_any", "to_series")


# Europe/Berlin: the history crosses the end of summer time (2026-10-25), and weeks start
# at local midnight, an hour apart in UTC before and after it
@pytest.mark.parametrize(("seed", "tz"), [(3, TZ), (11, TZ), (5, ZoneInfo("Europe/Berlin"))])
def test_sql_cohorts_equal_the_pure_functions(conn: Connection, runtime: Runtime,
                                              seed: int, tz: ZoneInfo) -> None:
    build_random(conn, runtime, seed)
    for series, period in ((None, "week"), ("A", "week"), ("B", "month")):
        got = get_cohort_report(conn, actor=SYSTEM, tz=tz, series=series, period=period, now=NOW)
        want = reference(conn, series, period, tz=tz)
        assert got["participants"] == want["participants"] > 0
        assert len(got["issues"]) == len(want["issues"])
        for g, w in zip(got["issues"], want["issues"], strict=True):
            assert {k: g[k] for k in ISSUE_KEYS} == {k: w[k] for k in ISSUE_KEYS}, g["code"]
            if w["after"] is None:
                assert g["after"] is None
            else:
                assert {k: g["after"][k] for k in AFTER_KEYS} == w["after"], g["code"]
        assert got["retention"] == want["retention"]
        assert got["lifecycle"] == want["lifecycle"]
        assert got["weekly_retention"] == want["weekly_retention"]
        if series is None:  # the history is rich enough to exercise every figure
            afters = [i["after"] for i in got["issues"] if i["after"]]
            assert all(sum(a[k] for a in afters) for a in afters[:1] for k in AFTER_KEYS)
            assert all(sum(r[k] for r in got["lifecycle"]) for k in (
                "new", "returning", "resurrecting", "dormant"))


def test_an_issue_added_while_counting_is_noticed(conn: Connection, runtime: Runtime) -> None:
    """The statement numbers the issues itself; counted against an older reading of them
    (an issue added in between, earlier than the rest) it refuses, and the report reads
    again."""
    build_random(conn, runtime, 3)
    stale = chronological(_issues(conn))
    activities.do_create_activity(conn, actor=SYSTEM, series="A", starts_on="2026-05-01",
                                  ends_on="2026-05-03")
    ids = [i.id for i in stale]
    with pytest.raises(_Reordered):
        _issue_figures(conn, activity_kinds(conn), stale, ids, None, TZ, 21, NOW)
    got = get_cohort_report(conn, actor=SYSTEM, tz=TZ, now=NOW, with_activity=False)
    want = reference(conn, None, "week", with_activity=False)
    assert got["issues"][0]["starts_on"] == "2026-05-01" and got["participants"] > 0
    assert [{k: i[k] for k in ISSUE_KEYS} for i in got["issues"]] == [
        {k: i[k] for k in ISSUE_KEYS} for i in want["issues"]]
