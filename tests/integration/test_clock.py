"""The runtime's source of now: the wall clock unless a fixed time is given."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from qunyun.bootstrap import Runtime
from qunyun.clock import Clock, FixedTime, utcnow, wall_clock


def test_utcnow_is_aware_utc_and_moves() -> None:
    a = utcnow()
    assert a.tzinfo is UTC
    assert utcnow() >= a


def test_a_fixed_time_is_what_the_runtime_clock_reads(runtime: Runtime) -> None:
    """Segments, lead scores and the worker read now through the runtime: a rehearsal or a
    test sets it once instead of patching the wall clock."""
    assert abs(runtime.clock().now - utcnow()) < timedelta(seconds=5)  # the wall clock
    at = datetime(2027, 2, 10, 16, 30, tzinfo=UTC)  # 00:30 on the 11th in Shanghai
    runtime.now = FixedTime(at)
    try:
        clock = runtime.clock()
        assert clock.now == at and runtime.now() == at
        assert clock.now.astimezone(clock.tz).date() == date(2027, 2, 11)
    finally:
        runtime.now = wall_clock


def test_day_start_is_local_midnight() -> None:
    clock = Clock(datetime(2026, 12, 3, tzinfo=UTC), ZoneInfo("Asia/Shanghai"))
    start = clock.day_start(date(2026, 12, 3))
    assert start.astimezone(UTC) == datetime(2026, 12, 2, 16, 0, tzinfo=UTC)


def test_a_fixed_time_reaches_what_services_stamp(runtime: Runtime) -> None:
    """Services stamp rows with ``utcnow()``: inside the runtime's transactions it reads the
    runtime's source, so a rehearsal at a fixed time stores that time, not the machine's."""
    from qunyun.services import tags
    from qunyun.services.users import SYSTEM

    at = datetime(2027, 2, 10, 16, 30, tzinfo=UTC)
    runtime.now = FixedTime(at)
    try:
        with runtime.uow.write() as conn:
            assert utcnow() == at
            tag_id = tags.do_create_tag(conn, actor=SYSTEM, name="冻结时间")
        with runtime.uow.read() as conn:
            created = next(t for t in tags.list_tags(conn, actor=SYSTEM) if t["id"] == tag_id)
        assert created["created_at"].replace(tzinfo=UTC) == at
    finally:
        runtime.now = wall_clock
    assert abs(utcnow() - wall_clock()) < timedelta(seconds=5)  # outside: the machine's
