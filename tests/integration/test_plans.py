"""A plan against what happened, on a hand-computed fixture: five days, joins on four of
them (one day with no data at all), talk, enrolments with and without a deposit, an
order; the goal spread into daily targets; a finished day short by more than the margin
flagged, today not yet; stages totalled; refusals change nothing."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import identities, staff_tasks
from qunyun.bootstrap import Runtime
from qunyun.services import activities, conversions, enrolments, plans, users
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.users import SYSTEM
from qunyun.web.report import render_plan_html
from qunyun.web.report_image import plan_pdf, plan_png
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


def test_people_checklist_budget_and_short_days_raised_once(
        conn: Connection, runtime: Runtime) -> None:
    _gid, camp = build(conn, runtime)
    users.do_create_user(conn, actor=SYSTEM, username="pm1", password="a-long-password-1",
                         role="operator")
    plan = plans.do_create_plan(conn, actor=SYSTEM, name="K1", starts_on="2026-11-20",
                                ends_on="2026-11-24", activity=camp, tz=TZ, now=T0)
    pid = plan["id"]
    lead = "pm1"
    plans.do_set_role(conn, actor=SYSTEM, plan_id=pid, username=lead, role="pm", now=T0)
    plans.do_set_role(conn, actor=SYSTEM, plan_id=pid, username=lead, role="pm", now=T0)
    plans.do_add_item(conn, actor=SYSTEM, plan_id=pid, kind="poster", title="招募海报",
                      owner=lead, due_on="2026-11-19", now=T0)
    shown = plans.do_add_budget(conn, actor=SYSTEM, plan_id=pid, category="gifts",
                                title="保温杯 x20", planned="300", now=T0)
    item, line = shown["checklist"][0], shown["budget"][0]
    assert [r["role"] for r in shown["roles"]] == ["pm"]  # given twice, held once
    plans.do_set_item_status(conn, actor=SYSTEM, plan_id=pid, item_id=item["id"],
                             status="done", now=T0)
    after = plans.do_set_budget_actual(conn, actor=SYSTEM, plan_id=pid, line_id=line["id"],
                                       actual="279.5", now=T0)
    assert after["checklist"][0]["status"] == "done"
    assert after["budget_totals"] == {"planned_fen": 30000, "actual_fen": 27950}
    plans.do_set_targets(conn, actor=SYSTEM, plan_id=pid, metric="joined", total=20, now=T0)
    made = plans.raise_variance(conn, tz=TZ, now=NOW)
    # 11-20 (3), 11-22 (0), 11-23 (2) under 4 × 0.8; 11-24 is today: not judged yet
    assert len(made) == 3
    tasks = conn.execute(select(staff_tasks.c.title, staff_tasks.c.payload).where(
        staff_tasks.c.kind == plans.VARIANCE_TASK).order_by(staff_tasks.c.id)).all()
    assert tasks[0].title == "K1：2026-11-20 未达目标（入群 3/4）"
    assert tasks[0].payload["leads"] == [lead]
    assert plans.raise_variance(conn, tz=TZ, now=NOW + timedelta(hours=1)) == []  # once
    # the next day: only the day that just ended is judged
    assert len(plans.raise_variance(conn, tz=TZ, now=NOW + timedelta(days=1))) == 1
    before = snapshot(conn)
    for call in (
            lambda: plans.do_set_role(conn, actor=SYSTEM, plan_id=pid, username="nobody",
                                      role="pm", now=T0),
            lambda: plans.do_set_role(conn, actor=SYSTEM, plan_id=pid, username=lead,
                                      role="boss", now=T0),
            lambda: plans.do_add_budget(conn, actor=SYSTEM, plan_id=pid, category="gifts",
                                        title="x", planned="三百", now=T0),
            lambda: plans.do_set_item_status(conn, actor=SYSTEM, plan_id=pid,
                                             item_id=item["id"], status="lost", now=T0)):
        with pytest.raises((NotFound, InvalidInput)):
            call()
    assert snapshot(conn) == before


def test_review_and_the_closing_report(conn: Connection, runtime: Runtime) -> None:
    _gid, camp = build(conn, runtime)
    plan = plans.do_create_plan(
        conn, actor=SYSTEM, name="K1 <收官>", starts_on="2026-11-20", ends_on="2026-11-24",
        activity=camp, goal={"target_deposits": 2, "deposit_rate": 0.1, "join_rate": 0.1},
        tz=TZ, now=T0)
    pid = plan["id"]
    stage = plans.do_add_stage(conn, actor=SYSTEM, plan_id=pid, kind="recruiting",
                               name="招募", starts_on="2026-11-20", ends_on="2026-11-22",
                               now=T0)["stages"][0]
    plans.do_stage_retro(conn, actor=SYSTEM, plan_id=pid, stage_id=stage["id"],
                         worked="海报转发多", did_not="<script>x</script>第三天没人进",
                         change="第三天加一场直播", now=T0)
    logged = plans.do_add_problem(conn, actor=SYSTEM, plan_id=pid, issue="群满了没开新群",
                                  now=T0)
    problem = logged["problems"][0]
    plans.do_close_problem(conn, actor=SYSTEM, plan_id=pid, problem_id=problem["id"],
                           resolution="活码加了备用群", now=T0)
    with pytest.raises(Conflict):
        plans.do_close_problem(conn, actor=SYSTEM, plan_id=pid, problem_id=problem["id"],
                               resolution="again", now=T0)
    report = plans.closing_report(conn, actor=SYSTEM, plan_id=pid, tz=TZ, now=NOW)
    assert report["goal_vs_outcome"] == [
        {"metric": "joined", "planned": 20, "actual": 10},
        {"metric": "deposit", "planned": 2, "actual": 1},
        {"metric": "purchase", "planned": 1, "actual": 1}]
    html = render_plan_html(report)
    assert "K1 &lt;收官&gt;" in html and "<script>x</script>" not in html
    assert "第三天加一场直播" in html and "活码加了备用群" in html and "已解决" in html
    assert "<script" not in html  # one file with nothing to run


def test_the_closing_report_as_a_picture_and_a_pdf(conn: Connection, runtime: Runtime,
                                                   tmp_path: Path) -> None:
    _gid, camp = build(conn, runtime)
    plan = plans.do_create_plan(
        conn, actor=SYSTEM, name="K1 结案", starts_on="2026-11-20", ends_on="2026-11-24",
        activity=camp, goal={"target_deposits": 2, "deposit_rate": 0.1, "join_rate": 0.1},
        tz=TZ, now=T0)
    pid = plan["id"]
    for _ in range(3):  # long issues wrap over several lines
        plans.do_add_problem(conn, actor=SYSTEM, plan_id=pid, issue="群满了没开新群" * 12,
                             now=T0)
    plans.do_add_budget(conn, actor=SYSTEM, plan_id=pid, category="gifts", title="保温杯",
                        planned="300", now=T0)
    report = plans.closing_report(conn, actor=SYSTEM, plan_id=pid, tz=TZ, now=NOW)
    picture = Image.open(io.BytesIO(plan_png(report)))
    assert picture.format == "PNG" and picture.width == 1240 and picture.height > 1000
    picture.save(tmp_path / "report.png")  # to look at, kept by pytest
    colours = {c for _n, c in picture.convert("RGB").getcolors(1 << 20) or []}
    # the daily joins as bars, the targets as a line, the goal missed in red
    assert {(0xF2, 0xC1, 0x4E), (0x3A, 0x5F, 0xB0), (0xC0, 0x39, 0x2B)} <= colours
    english = Image.open(io.BytesIO(plan_png(report, language="en")))
    assert english.size[0] == 1240
    pdf = plan_pdf(report)
    pages = int(re.search(rb"/Count (\d+)", pdf)[1])  # type: ignore[index]
    assert pdf.startswith(b"%PDF") and pages == -(-picture.height // 1754)
