"""offset_spans: the zone's UTC offset span by span, so SQL without a zone database (SQLite)
or without per-row zone conversion (the DuckDB mirror) still cuts days and weeks at local
midnight across summer time."""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from qunyun.analytics.overview import offset_spans

START, END = datetime(2024, 12, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)


def test_a_zone_without_summer_time_is_one_span() -> None:
    assert offset_spans(ZoneInfo("Asia/Shanghai"), START, END) == [(START, 8 * 3600)]


def test_spans_start_at_the_exact_change() -> None:
    spans = offset_spans(ZoneInfo("Europe/Berlin"), START, END)
    assert spans == [(START, 3600),
                     (datetime(2025, 3, 30, 1, tzinfo=UTC), 7200),
                     (datetime(2025, 10, 26, 1, tzinfo=UTC), 3600),
                     (datetime(2026, 3, 29, 1, tzinfo=UTC), 7200),
                     (datetime(2026, 10, 25, 1, tzinfo=UTC), 3600)]


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
                                  "America/Santiago", "UTC"])
def test_every_quarter_hour_gets_the_zones_offset(zone: str) -> None:
    tz = ZoneInfo(zone)
    spans = offset_spans(tz, START, END)
    starts = [at for at, _ in spans]
    at = START
    while at < END:  # the span holding each time gives what the zone database says
        offset = spans[bisect_right(starts, at) - 1][1]
        local = at.astimezone(tz).utcoffset()
        assert local is not None and offset == int(local.total_seconds()), at
        at += timedelta(minutes=15)
