"""Step times, quiet hours, caps and the send planner (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from qunyun.domain.content import (
    Cap,
    ContentError,
    QuietHours,
    SendPlanner,
    caps_from_text,
    caps_to_text,
    check_script,
    holiday_calendar,
    parse_when,
    period_bounds,
    render,
    variables_in,
)

TZ = ZoneInfo("Asia/Shanghai")


def sh(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ).astimezone(UTC)


def test_relative_steps_follow_the_campaign_start_in_local_days() -> None:
    start = sh(2026, 12, 1, 20)
    assert parse_when("T-2d 20:00").next_at(sh(2026, 11, 1), tz=TZ, campaign_start=start) == (
        sh(2026, 11, 29, 20), "")
    assert parse_when("T-1h").next_at(sh(2026, 11, 1), tz=TZ, campaign_start=start)[0] == \
        sh(2026, 12, 1, 19)  # type: ignore[index]
    assert parse_when("T+30m").next_at(sh(2026, 11, 1), tz=TZ, campaign_start=start)[0] == \
        sh(2026, 12, 1, 20, 30)  # type: ignore[index]
    # 00:30 local is the previous day in UTC: "T 09:00" still means the local start day
    early = sh(2026, 12, 1, 0, 30)
    assert parse_when("T 09:00").next_at(sh(2026, 11, 1), tz=TZ, campaign_start=early)[0] == \
        sh(2026, 12, 1, 9)  # type: ignore[index]
    assert parse_when("T+0").next_at(start + timedelta(seconds=1), tz=TZ,
                                     campaign_start=start) is None


def test_recurring_steps_and_holidays() -> None:
    daily = parse_when("daily 08:00")
    assert daily.next_at(sh(2026, 12, 1, 8, 1), tz=TZ)[0] == sh(2026, 12, 2, 8)  # type: ignore[index]
    weekly = parse_when("weekly 周五 20:00")
    found = weekly.occurrences(sh(2026, 12, 1), sh(2026, 12, 31), tz=TZ)
    assert [a.astimezone(TZ).day for a, _ in found] == [4, 11, 18, 25]
    assert parse_when("weekly fri 20:00").weekday == weekly.weekday
    cal = holiday_calendar((2027,))
    assert cal[date(2027, 2, 6)] == "春节" and cal[date(2027, 9, 15)] == "中秋节"
    assert all("补假" not in n for n in cal.values())
    nxt = parse_when("holiday 09:00").next_at(sh(2027, 1, 2), tz=TZ)
    assert nxt == (sh(2027, 2, 5, 9), "农历除夕")


@pytest.mark.parametrize("spec", ["T-1", "T-1h 20:00", "daily 24:00", "weekly x 09:00",
                                  "at 2026-02-30 10:00", "every day", ""])
def test_bad_step_times_name_the_field(spec: str) -> None:
    with pytest.raises(ContentError, match=r"^at: "):
        parse_when(spec)


def test_quiet_hours_across_midnight() -> None:
    q = QuietHours.parse("22:30-08:00")
    assert q is not None
    assert q.contains(time(23, 0)) and q.contains(time(7, 59)) and not q.contains(time(8, 0))
    assert q.defer(sh(2026, 12, 1, 23), TZ) == sh(2026, 12, 2, 8)
    assert q.defer(sh(2026, 12, 2, 1), TZ) == sh(2026, 12, 2, 8)
    assert q.defer(sh(2026, 12, 2, 12), TZ) == sh(2026, 12, 2, 12)
    assert QuietHours.parse("") is None
    with pytest.raises(ContentError, match="quiet_hours"):
        QuietHours.parse("8点到9点")


def test_periods_and_the_days_in_month_cap() -> None:
    assert period_bounds("week", sh(2026, 12, 3, 10), TZ) == (sh(2026, 11, 30), sh(2026, 12, 7))
    assert period_bounds("month", sh(2026, 2, 10), TZ) == (sh(2026, 2, 1), sh(2026, 3, 1))
    assert Cap("group", "month", "days").limit_at(date(2026, 2, 3)) == 28
    text = "group:day:6, wecom/group:month:days"
    assert caps_to_text(caps_from_text(text)) == text
    with pytest.raises(ContentError, match="caps"):
        caps_from_text("group:week:days")


def test_planner_queues_to_the_next_period_or_drops() -> None:
    caps = [Cap("group", "day", 2), Cap("group", "month", 3, platform="wecom")]
    planner = SendPlanner(caps=caps, tz=TZ, quiet=QuietHours.parse("22:30-08:00"))
    noon = sh(2026, 12, 1, 12)
    assert planner.place("sandbox", "group", 1, noon).status == "send"
    assert planner.place("sandbox", "group", 1, noon).status == "send"
    third = planner.place("sandbox", "group", 1, noon)
    assert third.status == "queued" and third.at == sh(2026, 12, 2, 8)  # next day, after quiet
    for _ in range(3):
        planner.place("wecom", "group", 2, noon + timedelta(days=_))
    over = planner.place("wecom", "group", 2, sh(2026, 12, 20, 12))
    assert over.status == "queued" and over.at == sh(2027, 1, 1, 8)
    dropping = SendPlanner(caps=caps, tz=TZ, over_cap="drop")
    dropping.place("sandbox", "group", 3, noon)
    dropping.place("sandbox", "group", 3, noon)
    dropped = dropping.place("sandbox", "group", 3, noon)
    assert dropped.status == "dropped" and "每群每天最多 2 次" in dropped.reason
    late = planner.place("sandbox", "member", 9, sh(2026, 12, 1, 23))
    assert late.status == "deferred" and late.at == sh(2026, 12, 2, 8)


def test_script_variables_and_rendering() -> None:
    assert variables_in("{name}你好，{course}在{group}开课，{name}") == ["name", "course", "group"]
    with pytest.raises(ContentError, match="unknown variable"):
        check_script("{course}", [], [])
    assert check_script("{course}", ["course"], []) == []
    with pytest.raises(ContentError, match="not a variable name"):
        check_script("{a.b}", [], [])
    with pytest.raises(ContentError, match=r"attachments\[0\].title"):
        check_script("x", [], [{"type": "link", "url": "https://a.cn"}])
    assert render("{name}，{{literal}} {x}", {"name": "小明"}) == ("小明，{literal} {x}", ["x"])
