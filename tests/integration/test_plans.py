"""A plan against what happened, on a hand-computed fixture: five days, joins on four of
them (one day with no data at all), talk, enrolments with and without a deposit, an
order; the goal spread into daily targets; a finished day short by more than the margin
flagged, today not yet; stages totalled; refusals change nothing."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import identities
from qunyun.bootstrap import Runtime
from qunyun.services import activities, conversions, enrolments, plans
from qunyun.services.errors import Conflict, InvalidInput
from qunyun.services.users import SYSTEM
from tests.dbhelpers import snapshot
from tests.factories import T0, raw_join, raw_message
from tests.integration.test_lifecycle import feed

TZ = ZoneInfo("Asia/Shanghai")
DAY = 24 * 60
NOW = T0 + timedelta(days=4, hours=-2)  # 2026-11-24 18:00 local: the last day, not over


def member(conn: Connection, user: str) -> int:
    return int(conn.execute(select(identities.c.member_id).where(
        identities.c.external_id == user)).scalar_one())


def build(conn: Connection, runtime: Runtime) -> tuple[int, int]:
    # local days: T0 is 2026-11-20 20:00 in Shanghai
    joins = [raw_join(f"a{i}", "camp", f"a{i}", minutes=i) for i in range(3)]          # 11-20
    joins += [raw_join(f"b{i}", "camp", f"b{i}", minutes=DAY + i) for i in range(5)]   # 11-21
    joins += [raw_join(f"c{i}", "camp", f"c{i}", minutes=3 * DAY + i) for i in range(2)]
    talk = [raw_message("m1", "camp", "b0", "你好", minutes=DAY + 30),
            raw_message("m2", "camp", "b1", "报名", minutes=DAY + 31),
            raw_message("m3", "camp", "b0", "再问一下", minutes=DAY + 32)]
    gid = feed(conn, runtime, joins + talk)
    activities.do_create_series(conn, actor=SYSTEM, code="K", name="训练营")
    camp = activities.do_create_activity(conn, actor=SYSTEM, series="K",
                                         opens_on=T0.date(), starts_on=T0.date(),
                                         ends_on=(T0 + timedelta(days=10)).date(),
                                         group_ids=[gid])
    for user, fen in (("b0", 9900), ("b1", 0)):
        enrolments.do_enrol(conn, actor=SYSTEM, activity_id=camp, member_id=member(conn, user),
                            deposit_fen=fen, at=T0 + timedelta(days=1, hours=1))
    conversions.do_record_conversion(conn, actor=SYSTEM, kind="order", amount_fen=199900,
                                     activity_id=camp, member_id=member(conn, "b0"),
                                     at=T0 + timedelta(days=3, hours=1), external_ref="O-1")
    return gid, camp


def test_plan_versus_actual_day_by_day(conn: Connection, runtime: Runtime) -> None:
    _gid, camp = build(conn, runtime)
    plan = plans.do_create_plan(
        conn, actor=SYSTEM, name="K1 招募", starts_on="2026-11-20", ends_on="2026-11-24",
        activity=camp, goal={"target_deposits": 2, "deposit_rate": 0.1, "join_rate": 0.1,
                             "purchase_rate": 0.5}, margin=0.2, tz=TZ, now=T0)
    # 2 deposits at 10 % → 20 members over 5 days: 4 a day; deposits 2 → 1, 1, 0, 0, 0
    assert plan["target_totals"] == {"joined": 20, "active": 0, "enrolled": 0, "deposit": 2,
                                     "purchase": 1}
    plans.do_add_stage(conn, actor=SYSTEM, plan_id=plan["id"], kind="recruiting",
                       name="招募期", starts_on="2026-11-20", ends_on="2026-11-22", now=T0)
    plans.do_add_stage(conn, actor=SYSTEM, plan_id=plan["id"], kind="launch", name="开营",
                       starts_on="2026-11-23", ends_on="2026-11-24", now=T0)
    plans.do_set_targets(conn, actor=SYSTEM, plan_id=plan["id"], metric="active",
                         value=2, day="2026-11-21", now=T0)
    report = plans.plan_actual(conn, actor=SYSTEM, plan_id=plan["id"], tz=TZ, now=NOW)
    days = {d["day"]: d for d in report["days"]}
    assert [days[d]["joined"]["actual"] for d in sorted(days)] == [3, 5, 0, 2, 0]
    assert days["2026-11-22"]["joined"] == {"target": 4, "actual": 0, "short": True}
    assert days["2026-11-21"]["active"] == {"target": 2, "actual": 2, "short": False}
    assert (days["2026-11-21"]["enrolled"]["actual"], days["2026-11-21"]["deposit"]["actual"],
            days["2026-11-23"]["purchase"]["actual"]) == (2, 1, 1)
    # short: a finished day under its target × 0.8 (joins under 3.2; the first day's
    # deposit and purchase targets of 1 met by nobody); today (11-24) is not over yet
    assert [(s["day"], s["metric"]) for s in report["short"]] == [
        ("2026-11-20", "joined"), ("2026-11-20", "deposit"), ("2026-11-20", "purchase"),
        ("2026-11-22", "joined"), ("2026-11-23", "joined")]
    assert report["totals"]["joined"] == {"target": 20, "actual": 10}
    recruiting, launch = report["stages"]
    assert recruiting["totals"]["joined"] == {"target": 12, "actual": 8}
    assert launch["totals"]["purchase"] == {"target": 0, "actual": 1}


def test_refusals(conn: Connection, runtime: Runtime) -> None:
    _gid, camp = build(conn, runtime)
    plan = plans.do_create_plan(conn, actor=SYSTEM, name="K1", starts_on="2026-11-20",
                                ends_on="2026-11-24", activity=camp, tz=TZ, now=T0)
    before = snapshot(conn)
    for call in (
            lambda: plans.do_create_plan(conn, actor=SYSTEM, name="K1", starts_on="2026-11-20",
                                         ends_on="2026-11-21", tz=TZ, now=T0),
            lambda: plans.do_create_plan(conn, actor=SYSTEM, name="x", starts_on="2026-11-20",
                                         ends_on="2026-11-19", tz=TZ, now=T0),
            lambda: plans.do_create_plan(conn, actor=SYSTEM, name="x", starts_on="11月20日",
                                         ends_on="2026-11-21", tz=TZ, now=T0),
            lambda: plans.do_add_stage(conn, actor=SYSTEM, plan_id=plan["id"], kind="party",
                                       name="", starts_on="2026-11-20", ends_on="2026-11-20",
                                       now=T0),
            lambda: plans.do_add_stage(conn, actor=SYSTEM, plan_id=plan["id"], kind="launch",
                                       name="", starts_on="2026-11-20", ends_on="2026-12-20",
                                       now=T0),
            lambda: plans.do_set_targets(conn, actor=SYSTEM, plan_id=plan["id"],
                                         metric="joined", now=T0),
            lambda: plans.do_set_targets(conn, actor=SYSTEM, plan_id=plan["id"],
                                         metric="likes", total=3, now=T0)):
        with pytest.raises((Conflict, InvalidInput)):
            call()
    assert snapshot(conn) == before
    assert plans.find_plan(conn, actor=SYSTEM, ref="K1") == plan["id"]
