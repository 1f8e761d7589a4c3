"""Activity series and their cohorts (F22, F25), as pure functions over who took part where.

An *appearance* is an enrolment in an issue. Issues are ordered in time (start day, then id)
across all series, so "earlier" and "later" mean the same thing in every chart:

- **source**: the issue where a participant first appeared in the whole system ("new" when it
  is this issue) — the middle chart of seed 000;
- **series source**: the first issue of *this* series they took part in — the left chart;
- **previous**: the latest issue before this one they took part in (any series);
- **last seen after**: the last issue after this one they took part in ("none" when they
  never came back) — the right chart;
- **renewal**: share of participants who took part in the series' next issue, in any later
  issue, and per later series;
- **retention matrix**: share of issue i's participants found in later issue j.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from qunyun.i18n import InvalidValue

NEW = "new"  # first appearance is this issue
NONE = "none"  # never seen in a later issue
STATES = ("planned", "open", "running", "ended", "settled")
CONVERSION_KINDS = ("deposit", "order", "cost")
FUNNEL_STEPS = ("reached", "joined", "spoke", "enrolled", "deposit", "purchase")
CODE_RE = re.compile(r"^[A-Za-z0-9\u4e00-\u9fff_-]{1,32}$")


def parse_yuan(text: str | float | int, field: str = "amount") -> int:
    """``"99"``, ``"99.5"``, ``"¥1,299.00"`` → fen. Raises ValueError naming the field."""
    raw = str(text).strip().replace(",", "").replace("，", "").lstrip("¥￥").removesuffix("元")
    try:
        value = Decimal(raw or "0")
    except InvalidOperation:
        raise InvalidValue("{field}: {text!r} is not an amount in yuan",
                         field=field, text=text) from None
    if not value.is_finite() or value < 0:
        raise InvalidValue("{field}: {text!r} must be a non-negative amount",
                           field=field, text=text)
    fen = value * 100
    if fen != fen.to_integral_value():
        raise InvalidValue("{field}: {text!r} has more than two decimals", field=field, text=text)
    return int(fen)


def yuan(fen: int | None) -> float:
    return round((fen or 0) / 100, 2)


def check_code(code: str, field: str = "code") -> str:
    code = code.strip()
    if not CODE_RE.match(code):
        raise InvalidValue("{field}: {code!r} — use 1–32 letters, digits, Chinese, - or _",
                         field=field, code=code)
    return code


@dataclass(frozen=True)
class Issue:
    """What the cohort functions need to know of an issue."""

    id: int
    code: str
    series: str  # the series code
    seq: int
    starts_on: date
    ends_on: date

    @property
    def order(self) -> tuple[date, int]:
        return (self.starts_on, self.id)


def day_bounds(day: str | date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The instants a team-local day starts and ends (end exclusive)."""
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return (datetime.combine(d, time.min, tzinfo=tz),
            datetime.combine(d + timedelta(days=1), time.min, tzinfo=tz))


def chronological(issues: Iterable[Issue]) -> list[Issue]:
    return sorted(issues, key=lambda i: i.order)


@dataclass
class IssueCohort:
    issue: Issue
    participants: int
    source: dict[str, int]  # NEW or issue code → members (first appearance overall)
    series_source: dict[str, int]  # NEW or issue code of the same series
    previous: dict[str, int]  # NEW or the latest earlier issue's code
    last_after: dict[str, int]  # NONE or the last later issue's code
    next_in_series: str | None
    renewed_next: int  # took part in the series' next issue
    renewed_any: int  # took part in any later issue
    to_series: dict[str, int]  # later series → members who took part in one of its issues

    def rate(self, n: int) -> float:
        return round(n / self.participants, 4) if self.participants else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.issue.id, "code": self.issue.code, "series": self.issue.series,
            "starts_on": self.issue.starts_on.isoformat(),
            "ends_on": self.issue.ends_on.isoformat(), "participants": self.participants,
            "new": self.source.get(NEW, 0), "returning": self.participants - self.source.get(
                NEW, 0),
            "source": self.source, "series_source": self.series_source,
            "previous": self.previous, "last_after": self.last_after,
            "next_in_series": self.next_in_series, "renewed_next": self.renewed_next,
            "renewal_next": self.rate(self.renewed_next) if self.next_in_series else None,
            "renewed_any": self.renewed_any, "renewal_any": self.rate(self.renewed_any),
            "to_series": self.to_series,
            "to_series_rate": {s: self.rate(n) for s, n in self.to_series.items()},
        }


def issue_cohorts(issues: Iterable[Issue], participation: Mapping[int, Iterable[int]],
                  scope: Iterable[int] | None = None) -> list[IssueCohort]:
    """One cohort per issue in ``scope`` (default: all), in time order.

    ``issues`` must hold every issue any participant took part in (so "first appeared" and
    "last seen" look at the whole system); ``participation`` maps issue id → member ids.
    """
    ordered = chronological(issues)
    pos = {i.id: n for n, i in enumerate(ordered)}
    wanted = set(scope) if scope is not None else set(pos)
    seen: dict[int, list[int]] = defaultdict(list)  # member → positions, ascending
    for issue in ordered:
        for m in set(participation.get(issue.id, ())):
            seen[m].append(pos[issue.id])
    by_series: dict[str, list[Issue]] = defaultdict(list)
    for issue in ordered:
        by_series[issue.series].append(issue)
    out = []
    for a, issue in enumerate(ordered):
        if issue.id not in wanted:
            continue
        nxt = next_in_series(by_series[issue.series], issue)
        source: Counter[str] = Counter()
        series_source: Counter[str] = Counter()
        previous: Counter[str] = Counter()
        last_after: Counter[str] = Counter()
        to_series: Counter[str] = Counter()
        renewed_next = renewed_any = 0
        members = set(participation.get(issue.id, ()))
        for m in members:
            positions = seen[m]
            first = positions[0]
            source[NEW if first == a else ordered[first].code] += 1
            first_here = next(p for p in positions if ordered[p].series == issue.series)
            series_source[NEW if first_here == a else ordered[first_here].code] += 1
            before = [p for p in positions if p < a]
            previous[ordered[before[-1]].code if before else NEW] += 1
            after = [p for p in positions if p > a]
            last_after[ordered[after[-1]].code if after else NONE] += 1
            if after:
                renewed_any += 1
                for s in {ordered[p].series for p in after}:
                    to_series[s] += 1
                if nxt is not None and pos[nxt.id] in after:
                    renewed_next += 1
        out.append(IssueCohort(
            issue=issue, participants=len(members), source=stack_order(source, ordered),
            series_source=stack_order(series_source, ordered),
            previous=stack_order(previous, ordered),
            last_after=stack_order(last_after, ordered),
            next_in_series=nxt.code if nxt else None, renewed_next=renewed_next,
            renewed_any=renewed_any, to_series=dict(sorted(to_series.items()))))
    return out


def next_in_series(siblings: Iterable[Issue], issue: Issue) -> Issue | None:
    """The series' next issue: the later sibling with the lowest number."""
    later = [s for s in siblings if s.order > issue.order]
    return min(later, key=lambda s: (s.seq, s.order)) if later else None


def stack_order(counts: Mapping[str, int], ordered: list[Issue]) -> dict[str, int]:
    """NEW first, then issues in time order, then NONE: the stacking order of the bars."""
    rank = {i.code: n for n, i in enumerate(ordered)}
    keys = sorted(counts, key=lambda k: (-1 if k == NEW else rank.get(k, len(rank) + 1)))
    return {k: counts[k] for k in keys}


def retention_matrix(issues: Iterable[Issue], participation: Mapping[int, Iterable[int]],
                     scope: Iterable[int]) -> dict[str, Any]:
    """Issue i's participants (rows) found again in each later issue j (columns), as shares."""
    sets = {i: set(people) for i, people in participation.items()}
    overlap = {(a, b): len(sets[a] & sets[b]) for a in sets for b in sets if a != b}
    return overlap_matrix(issues, {i: len(s) for i, s in sets.items()}, overlap, scope)


def overlap_matrix(issues: Iterable[Issue], sizes: Mapping[int, int],
                   overlap: Mapping[tuple[int, int], int], scope: Iterable[int]
                   ) -> dict[str, Any]:
    """The retention matrix from counts: participants per issue and per (earlier, later) pair
    of issues (what a database hands back without the member lists)."""
    wanted = set(scope)
    ordered = [i for i in chronological(issues) if i.id in wanted]
    rows = []
    for n, row in enumerate(ordered):
        base = sizes.get(row.id, 0)
        cells: list[float | None] = [
            None if m <= n else round(overlap.get((row.id, col.id), 0) / base, 4) if base
            else 0.0 for m, col in enumerate(ordered)]
        rows.append({"code": row.code, "participants": base, "cells": cells})
    return {"columns": [i.code for i in ordered], "rows": rows}


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def period_start(day: date, period: str) -> date:
    if period == "week":
        return week_start(day)
    if period == "month":
        return day.replace(day=1)
    raise InvalidValue("period: week or month")


def next_period(start: date, period: str) -> date:
    if period == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def lifecycle(active: Mapping[int, set[date]], first_seen: Mapping[int, date],
              period: str, start: date, end: date) -> list[dict[str, Any]]:
    """Growth accounting per period from ``start`` to ``end``.

    ``active`` maps member → period starts they were active in; ``first_seen`` their first
    appearance in the system. A member active in a period is *new* when they first appeared
    in it, *returning* when active in the period before too, else *resurrecting*; *dormant*
    counts members active in the period before but not in this one.
    """
    counts: dict[date, tuple[int, int, int, int]] = {}
    prev: date | None = None
    for p in periods(start, end, period):
        new = returning = resurrecting = dormant = 0
        for m, seen in active.items():
            here = p in seen
            before = prev is not None and prev in seen
            if here:
                if period_start(first_seen[m], period) == p:
                    new += 1
                elif before:
                    returning += 1
                else:
                    resurrecting += 1
            elif before:
                dormant += 1
        counts[p] = (new, returning, resurrecting, dormant)
        prev = p
    return lifecycle_rows(counts, period, start, end)


def periods(start: date, end: date, period: str) -> list[date]:
    """The starts of the weeks or months from the one holding ``start`` to ``end``'s."""
    out = []
    p, stop = period_start(start, period), period_start(end, period)
    while p <= stop:
        out.append(p)
        p = next_period(p, period)
    return out


def lifecycle_rows(counts: Mapping[date, tuple[int, int, int, int]], period: str,
                   start: date, end: date) -> list[dict[str, Any]]:
    """One row per period (zeros where nothing happened) from (new, returning,
    resurrecting, dormant) counts."""
    out = []
    for p in periods(start, end, period):
        new, returning, resurrecting, dormant = counts.get(p, (0, 0, 0, 0))
        out.append({"period": p.isoformat(), "new": new, "returning": returning,
                    "resurrecting": resurrecting, "dormant": dormant,
                    "active": new + returning + resurrecting})
    return out


def weekly_retention(active: Mapping[int, set[date]], first_seen: Mapping[int, date],
                     weeks: int = 8) -> dict[str, Any]:
    """Cohorts by the calendar week of first appearance; share active k weeks later."""
    cohorts: dict[date, list[int]] = defaultdict(list)
    for m, day in first_seen.items():
        cohorts[week_start(day)].append(m)
    rows = []
    for start in sorted(cohorts):
        people = cohorts[start]
        cells = []
        for k in range(weeks + 1):
            wk = start + timedelta(days=7 * k)
            cells.append(round(sum(1 for m in people if wk in active.get(m, ())) / len(people),
                               4))
        rows.append({"week": start.isoformat(), "members": len(people), "cells": cells})
    return {"offsets": list(range(weeks + 1)), "rows": rows}
