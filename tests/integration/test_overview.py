"""Daily figures are cut at midnight in the team's zone, not UTC's, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from qunyun.analytics.overview import Overview, overview
from qunyun.bootstrap import Runtime
from qunyun.services.ingest import do_ingest_event
from tests.factories import T0, event, raw_join, raw_leave, raw_message

SHANGHAI = ZoneInfo("Asia/Shanghai")


def figures(conn: Connection, **options: Any) -> Overview:
    """The daily series (the store's totals are the services' and not under test here)."""
    return overview(conn, members=0, open_tasks=0, outbox={}, **options)


def test_days_follow_the_team_timezone(conn: Connection, runtime: Runtime) -> None:
    # T0 = 2026-11-20 12:00 UTC = 20:00 in Shanghai; +300 min = 01:00 on the 21st there.
    for raw in (raw_join("j1", "g1", "u1"), raw_message("m1", "g1", "u1", "早", minutes=10),
                raw_message("m2", "g1", "u1", "晚", minutes=300),
                raw_leave("l1", "g1", "u1", minutes=301)):
        do_ingest_event(conn, event(raw), config=runtime.ingest_config)
    now = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)  # 11:00 on the 21st in Shanghai
    o = figures(conn, tz=SHANGHAI, days=3, now=now)
    assert o.days == ["2026-11-19", "2026-11-20", "2026-11-21"]
    assert o.messages_per_day == [0, 1, 1]
    assert o.joins_per_day == [0, 1, 0] and o.leaves_per_day == [0, 0, 1]
    assert o.messages_today == 1 and o.joins_today == 0
    utc = figures(conn, tz=ZoneInfo("UTC"), days=3, now=now)
    assert utc.messages_per_day == [0, 2, 0]  # in UTC both fall on the 20th


def test_days_follow_summer_time(conn: Connection, runtime: Runtime) -> None:
    """Berlin is UTC+2 in July: 21:30 and 22:30 UTC fall on two local days there (SQLite,
    which has no zone database, once shifted by the offset of the day the test ran)."""
    def minutes(at: datetime) -> float:
        return (at - T0).total_seconds() / 60

    do_ingest_event(conn, event(raw_join("j1", "g1", "u1", minutes=minutes(
        datetime(2026, 7, 19, 20, 0, tzinfo=UTC)))), config=runtime.ingest_config)
    for eid, hour in (("m1", 21), ("m2", 22)):
        do_ingest_event(conn, event(raw_message(eid, "g1", "u1", "晚上好", minutes=minutes(
            datetime(2026, 7, 19, hour, 30, tzinfo=UTC)))), config=runtime.ingest_config)
    o = figures(conn, tz=ZoneInfo("Europe/Berlin"), days=2,
                 now=datetime(2026, 7, 20, 12, 0, tzinfo=UTC))
    assert o.days == ["2026-07-19", "2026-07-20"]
    assert o.messages_per_day == [1, 1] and o.joins_per_day == [1, 0]
