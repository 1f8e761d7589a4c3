"""The channel report answers "which channel brought the members who enrolled" in one place,
with the reading (first or last touch) stated and each reading consistent (issue 26)."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection

from qunyun.bootstrap import Runtime
from qunyun.services import activities, conversions, enrolments
from qunyun.services.channel_report import get_channel_report
from qunyun.services.errors import InvalidInput
from qunyun.services.members import member_id_by_number
from qunyun.services.users import SYSTEM
from tests.factories import T0, raw_join
from tests.integration.test_listing import ingest

TZ = ZoneInfo("Asia/Shanghai")


def story(conn: Connection, runtime: Runtime) -> dict[str, int]:
    """Five people: two posters, a form channel, a member's invitation, an order."""
    joins = [  # (event, chat, user, name, minute, channel, inviter)
        ("j1", "g1", "u1", '小"王"', 0, "海报A", None),
        ("j2", "g1", "u2", "李🌸", 1, "海报A", None),
        ("j3", "g1", "u3", "张三、李四", 2, "海报B", None),
        ("j4", "g1", "u4", "=HYPERLINK(1)", 3, "", "u1"),
        ("j5", "g1", "u5", "Zoe", 4, "海报A", None),
        ("j6", "g2", "u1", '小"王"', 10, "海报B", None),  # u1 comes back through poster B
    ]
    for eid, chat, user, name, minute, channel, inviter in joins:
        raw = raw_join(eid, chat, user, name=name, minutes=minute, channel=channel,
                       inviter=inviter)
        ingest(conn, runtime, raw)
    ids = {f"u{n}": member_id_by_number(conn, 10000 + n) for n in range(1, 6)}
    activities.do_create_series(conn, actor=SYSTEM, code="X", name="英语打卡")
    activities.do_create_activity(conn, actor=SYSTEM, series="X", starts_on="2026-11-25",
                                  ends_on="2026-12-15", deposit_fen=9900)
    later = T0 + timedelta(minutes=20)
    for user, channel in (("u1", ""), ("u2", "公众号"), ("u3", ""), ("u4", "")):
        enrolments.do_enrol(conn, actor=SYSTEM, activity_id="X1", member_id=ids[user],
                            channel=channel, at=later)
    conversions.do_record_conversion(conn, actor=SYSTEM, kind="order", amount_fen=19900,
                                     member_id=ids["u3"], at=later + timedelta(hours=1))
    return ids


def lines(conn: Connection, **kw: object) -> dict[str, dict[str, object]]:
    report = get_channel_report(conn, actor=SYSTEM, tz=TZ, **kw)  # type: ignore[arg-type]
    return {ln["label"]: ln for ln in report.lines}


def test_first_touch_credits_the_first_join(conn: Connection, runtime: Runtime) -> None:
    story(conn, runtime)
    report = get_channel_report(conn, actor=SYSTEM, tz=TZ)
    by = {ln["label"]: ln for ln in report.lines}
    assert (by["海报A"]["members"], by["海报A"]["enrolled"], by["海报A"]["paid"]) == (3, 2, 2)
    assert (by["海报B"]["members"], by["海报B"]["purchased"], by["海报B"]["revenue"]) == (
        1, 1, 199.0)
    invited = next(ln for ln in report.lines if ln["key"].startswith("inviter:"))
    assert invited["label"] == '@小"王"（10001）' and invited["enrolled"] == 1
    assert report.winner and report.winner["label"] == "海报A"
    assert report.totals["members"] == 5 and report.totals["enrolled"] == 4
    assert by["海报A"]["enrol_rate"] == pytest.approx(2 / 3, abs=1e-4)


def test_last_touch_credits_the_latest_touch_before_each_outcome(conn: Connection,
                                                                 runtime: Runtime) -> None:
    story(conn, runtime)
    report = get_channel_report(conn, actor=SYSTEM, tz=TZ, model="last")
    by = {ln["label"]: ln for ln in report.lines}
    assert by["海报B"]["enrolled"] == 2  # u3, and u1 who came back through B before enrolling
    assert by["公众号"]["enrolled"] == 1  # the form names its channel
    assert by["海报A"]["enrolled"] == 0 and by["海报A"]["members"] == 2
    assert report.winner and report.winner["label"] == "海报B"
    assert report.totals["enrolled"] == 4  # the same people, credited elsewhere


def test_by_inviter_period_and_activity(conn: Connection, runtime: Runtime) -> None:
    story(conn, runtime)
    by = lines(conn, by="inviter")
    assert by['小"王"（10001）']["enrolled"] == 1 and by[""]["members"] == 4
    day = T0.astimezone(TZ).date()
    assert lines(conn, since=day + timedelta(days=1)) == {}
    assert sum(ln["members"] for ln in lines(conn, until=day).values()) == 5  # type: ignore[misc]
    with pytest.raises(InvalidInput):
        get_channel_report(conn, actor=SYSTEM, tz=TZ, activity="Z9")
    with pytest.raises(InvalidInput):
        get_channel_report(conn, actor=SYSTEM, tz=TZ, model="linear")
    with pytest.raises(InvalidInput):
        get_channel_report(conn, actor=SYSTEM, tz=TZ, since=date(2026, 12, 2),
                           until=date(2026, 12, 1))
    only = lines(conn, activity="X1")
    assert only["海报A"]["enrolled"] == 2
