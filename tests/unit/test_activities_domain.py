"""Pure activity and cohort functions, against figures worked out by hand."""

from __future__ import annotations

from datetime import date

import pytest

from qunyun.domain.activities import (
    Issue,
    issue_cohorts,
    lifecycle,
    parse_yuan,
    retention_matrix,
    weekly_retention,
)

W1, W2, W3, W4 = (date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16),
                  date(2026, 11, 23))  # Mondays


def test_yuan_amounts() -> None:
    assert parse_yuan("99") == 9900
    assert parse_yuan("¥1,299.5") == 129950
    assert parse_yuan("20元") == 2000
    assert parse_yuan("") == 0
    for bad, why in (("abc", "not an amount"), ("-3", "non-negative"),
                     ("1.234", "two decimals"), ("NaN", "non-negative")):
        with pytest.raises(ValueError, match=why):
            parse_yuan(bad, "amount")


def test_lifecycle_growth_accounting() -> None:
    # p: new in W1, active W2 (returning), absent W3 (dormant), back W4 (resurrecting)
    # q: first seen in W2 (new), active W3 (returning); r: first seen W1, never again
    active = {1: {W1, W2, W4}, 2: {W2, W3}, 3: {W1}}
    first = {1: W1, 2: W2, 3: W1}
    rows = lifecycle(active, first, "week", W1, W4)
    got = [(r["new"], r["returning"], r["resurrecting"], r["dormant"]) for r in rows]
    assert got == [(2, 0, 0, 0), (1, 1, 0, 1), (0, 1, 0, 1), (0, 0, 1, 1)]
    assert [r["period"] for r in rows] == [d.isoformat() for d in (W1, W2, W3, W4)]


def test_lifecycle_new_means_first_in_the_system_not_first_in_the_window() -> None:
    # seen long before the window opens, then active only in W2: resurrecting, not new
    rows = lifecycle({1: {date(2026, 1, 5), W2}}, {1: date(2026, 1, 5)}, "week", W1, W2)
    assert [(r["new"], r["resurrecting"]) for r in rows] == [(0, 0), (0, 1)]


def test_monthly_periods() -> None:
    rows = lifecycle({1: {date(2026, 10, 1), date(2026, 12, 1)}}, {1: date(2026, 10, 3)},
                     "month", date(2026, 10, 15), date(2026, 12, 2))
    assert [(r["period"], r["new"], r["dormant"], r["resurrecting"]) for r in rows] == [
        ("2026-10-01", 1, 0, 0), ("2026-11-01", 0, 1, 0), ("2026-12-01", 0, 0, 1)]


def test_weekly_retention_by_first_week() -> None:
    active = {1: {W1, W2}, 2: {W1, W3}, 3: {W2, W3}}
    first = {1: W1, 2: W1, 3: W2}
    table = weekly_retention(active, first, weeks=2)
    assert table["rows"] == [
        {"week": W1.isoformat(), "members": 2, "cells": [1.0, 0.5, 0.5]},
        {"week": W2.isoformat(), "members": 1, "cells": [1.0, 1.0, 0.0]}]


def test_cohorts_of_issues_in_one_series_and_across() -> None:
    issues = [Issue(1, "A1", "A", 1, W1, W1), Issue(2, "B1", "B", 1, W2, W2),
              Issue(3, "A2", "A", 2, W3, W3)]
    participation = {1: [10, 11, 12], 2: [11, 13], 3: [10, 11, 13, 14]}
    a1, b1, a2 = issue_cohorts(issues, participation)
    assert a2.source == {"new": 1, "A1": 2, "B1": 1}
    assert a2.series_source == {"new": 2, "A1": 2}
    assert a2.previous == {"new": 1, "A1": 1, "B1": 2}
    assert a1.last_after == {"none": 1, "A2": 2}
    assert (a1.next_in_series, a1.renewed_next, a1.renewed_any) == ("A2", 2, 2)
    assert a1.to_series == {"A": 2, "B": 1}
    assert b1.next_in_series is None and b1.as_dict()["renewal_next"] is None
    matrix = retention_matrix(issues, participation, [1, 3])
    assert matrix == {"columns": ["A1", "A2"], "rows": [
        {"code": "A1", "participants": 3, "cells": [None, 0.6667]},
        {"code": "A2", "participants": 4, "cells": [None, None]}]}
