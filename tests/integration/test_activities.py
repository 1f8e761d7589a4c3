"""Activities, conversions, cohorts and the funnel on SQLite and PostgreSQL, checked against
figures worked out by hand from tests/activity_scenario.py."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select

from qunyun.adapters.storage.tables import checkins, conversions, enrolments, member_counts
from qunyun.bootstrap import Runtime
from qunyun.services import activities, blacklist, settlements
from qunyun.services import checkins as checkins_service
from qunyun.services import conversions as conversions_service
from qunyun.services import enrolments as enrolments_service
from qunyun.services.blacklist import Refused
from qunyun.services.errors import Conflict, InvalidInput
from qunyun.services.members import access_member_by_id
from qunyun.services.reports import get_cohort_report, get_funnel
from qunyun.services.users import SYSTEM
from tests.activity_scenario import NOW, TZ, build
from tests.dbhelpers import snapshot


def by_code(report: dict, code: str) -> dict:
    return next(i for i in report["issues"] if i["code"] == code)


def test_series_cohorts_match_the_hand_computed_figures(conn: Connection,
                                                        runtime: Runtime) -> None:
    build(conn, runtime)
    report = get_cohort_report(conn, actor=SYSTEM, tz=TZ, series="X", now=NOW)
    assert [i["code"] for i in report["issues"]] == ["X1", "X2", "X3"]
    x1, x2, x3 = (by_code(report, c) for c in ("X1", "X2", "X3"))
    # the seed's middle chart: where X3's people first appeared anywhere
    assert x3["participants"] == 6 and x3["new"] == 2 and x3["returning"] == 4
    assert x3["source"] == {"new": 2, "X1": 1, "Y1": 2, "Z1": 1}
    # the left chart: first issue of series X they took part in
    assert x3["series_source"] == {"new": 4, "X1": 1, "X2": 1}
    assert x2["series_source"] == {"new": 2, "X1": 2}
    assert x2["source"] == {"new": 1, "X1": 2, "Y1": 1}
    # previous issue (any series), in time order
    assert list(x3["previous"].items()) == [("new", 2), ("Y1", 1), ("X2", 2), ("Z1", 1)]
    # the right chart: last issue seen in after each one
    assert x1["last_after"] == {"Y1": 1, "Z1": 1, "X3": 1, "none": 1}
    assert x2["last_after"] == {"Z1": 1, "X3": 2, "none": 1}
    assert x3["last_after"] == {"none": 6}
    # renewal into the series' next issue, any later issue, and per series
    assert (x1["next_in_series"], x1["renewed_next"], x1["renewal_next"]) == ("X2", 2, 0.5)
    assert x1["renewal_any"] == 0.75 and x1["to_series"] == {"X": 2, "Y": 1, "Z": 1}
    assert x2["renewal_next"] == 0.5 and x3["renewal_next"] is None
    # retention across the series' issues
    assert report["retention"]["columns"] == ["X1", "X2", "X3"]
    assert [r["cells"] for r in report["retention"]["rows"]] == [
        [None, 0.5, 0.25], [None, None, 0.5], [None, None, None]]
    # after X1 (21 days): a, b, c still in its group, only a active; d left (observed
    # churn); after X2 nobody left but g was never seen again (inferred)
    after1, after2 = x1["after"], x2["after"]
    assert (after1["still_in_group"], after1["active"], after1["churn_observed"],
            after1["churn_inferred"], after1["churn_observed_rate"]) == (3, 1, 1, 0, 0.25)
    assert (after2["still_in_group"], after2["active"], after2["churn_observed"],
            after2["churn_inferred"], after2["churn_inferred_rate"]) == (4, 0, 0, 1, 0.25)
    assert report["participants"] == 10  # a–j: each took part in some issue of X
    # lifecycle: every participant is "new" in the week they first appeared
    firsts = sum(p["new"] for p in report["lifecycle"])
    assert firsts == report["participants"]


def test_all_issues_scope_and_other_series(conn: Connection, runtime: Runtime) -> None:
    build(conn, runtime)
    report = get_cohort_report(conn, actor=SYSTEM, tz=TZ, now=NOW, with_activity=False)
    assert [i["code"] for i in report["issues"]] == ["X1", "Y1", "X2", "Z1", "X3"]
    y1 = by_code(report, "Y1")
    assert y1["source"] == {"new": 2, "X1": 1}  # c came from X1
    assert y1["last_after"] == {"X3": 2, "none": 1}  # e and f in X3, c never again
    assert "lifecycle" not in report
    with pytest.raises(Exception, match="series Q not found"):
        get_cohort_report(conn, actor=SYSTEM, tz=TZ, series="Q", now=NOW)


def test_funnel_per_channel_and_targets(conn: Connection, runtime: Runtime) -> None:
    s = build(conn, runtime)
    x1 = s.issues["X1"]
    activities.do_update_activity(conn, actor=SYSTEM, activity_id=x1, changes={
        "reach": {"poster": 100, "staff": 20}, "targets": {"joined": 10, "deposit": 4}})
    conversions_service.do_record_conversion(conn, actor=SYSTEM, kind="order", amount_fen=199900,
                                    activity_id=x1, member_id=s.members["a"],
                                    external_ref="T-1")
    conversions_service.do_record_conversion(conn, actor=SYSTEM, kind="deposit", amount_fen=20000,
                                    activity_id=x1, member_id=s.members["d"])
    data = get_funnel(conn, actor=SYSTEM, tz=TZ, activity="X1", now=NOW)
    steps = {st["step"]: st for st in data["steps"]}
    assert {k: v["count"] for k, v in steps.items()} == {
        "reached": 120, "joined": 5, "spoke": 2, "enrolled": 4, "deposit": 4, "purchase": 1}
    assert steps["joined"]["vs_target"] == 0.5 and steps["deposit"]["vs_target"] == 1.0
    assert steps["spoke"]["from_previous"] == 0.4
    channels = {c["channel"]: {st["step"]: st["count"] for st in c["steps"]}
                for c in data["channels"]}
    assert channels["poster"] == {"reached": 100, "joined": 3, "spoke": 2, "enrolled": 2,
                                  "deposit": 2, "purchase": 1}
    assert channels["staff"] == {"reached": 20, "joined": 2, "spoke": 0, "enrolled": 2,
                                 "deposit": 2, "purchase": 0}
    days = {d["day"]: d for d in data["daily"]}
    assert days["2026-08-30"]["new"] == 5 and days["2026-09-01"]["active"] == 1
    assert days["2026-08-31"]["enrolled"] == 4


def test_settlement_refunds_and_money(conn: Connection, runtime: Runtime) -> None:
    s = build(conn, runtime)
    x1, group = s.issues["X1"], s.groups["X1"]
    for letter, days in (("a", 5), ("b", 3), ("c", 1)):
        for d in range(days):
            checkins_service.do_form_checkin(
                conn, actor=SYSTEM, group_id=group, member_id=s.members[letter], tz=TZ,
                at=datetime(2026, 9, 1 + d, 8, tzinfo=TZ))
    plan = settlements.settlement(conn, actor=SYSTEM, activity_id=x1)
    rows = {r["member_id"]: r for r in plan["rows"]}
    a, b, c, d = (rows[s.members[k]] for k in "abcd")
    assert (a["checkins"], a["percent"], a["refund"], a["completed"]) == (5, 100, 99.0, True)
    assert (b["checkins"], b["percent"], b["refund"], b["completed"]) == (3, 50, 49.5, False)
    assert (c["refund"], d["deposit"], d["refund"]) == (0.0, 0.0, 0.0)
    assert plan["complete_checkins"] == 5 and plan["completed"] == 1
    assert (plan["deposits"], plan["refunds"]) == (297.0, 148.5)
    assert conn.execute(select(func.count()).select_from(enrolments).where(
        enrolments.c.settled_at.is_not(None))).scalar_one() == 0  # a preview writes nothing
    settlements.do_settle(conn, actor=SYSTEM, activity_id=x1)
    assert activities.access_activity(conn, actor=SYSTEM, ref="X1")["state"] == "settled"
    csv_text = settlements.settlement_csv(plan)
    assert csv_text.startswith("\ufeff活动,会员编号") and ",99.00,5,100,99.00,是" in csv_text
    conversions_service.do_record_conversion(conn, actor=SYSTEM, kind="order", amount_fen=199900,
                                    activity_id=x1, member_id=s.members["a"])
    conversions_service.do_record_conversion(conn, actor=SYSTEM, kind="deposit", amount_fen=20000,
                                    activity_id=x1, member_id=s.members["d"])
    conversions_service.do_record_conversion(conn, actor=SYSTEM, kind="cost", amount_fen=50000,
                                    activity_id=x1)
    m = settlements.money(conn, actor=SYSTEM, activity_id="X1")
    assert (m["deposits"], m["refunds"], m["deposits_kept"], m["gmv"], m["cost"]) == (
        297.0, 148.5, 148.5, 1999.0, 500.0)
    assert (m["intention_deposits"], m["revenue"], m["margin"]) == (200.0, 2147.5, 1647.5)
    by_group = {g["group_id"]: g for g in m["groups"]}
    assert by_group[group]["gmv"] == 1999.0 and by_group[group]["enrolled"] == 4
    assert by_group[None]["cost"] == 500.0  # a cost without a group is shared
    with pytest.raises(Conflict, match="settled"):
        enrolments_service.do_enrol(conn, actor=SYSTEM, activity_id=x1, member_id=s.members["e"])
    counts = dict(conn.execute(select(member_counts.c.kind, member_counts.c.n).where(
        member_counts.c.member_id == s.members["a"])).all())
    assert counts["enrolled"] == 3 and counts["purchase"] == 1


def test_blacklisted_member_is_refused_with_the_reason(conn: Connection,
                                                       runtime: Runtime) -> None:
    s = build(conn, runtime)
    blacklist.do_blacklist(conn, actor=SYSTEM, member_id=s.members["i"], reason="发广告",
                           capabilities=runtime.capabilities)
    with pytest.raises(Refused, match="blacklisted: 发广告"):
        enrolments_service.do_enrol(conn, actor=SYSTEM, activity_id=s.issues["X2"],
                            member_id=s.members["i"])
    activities.do_update_activity(conn, actor=SYSTEM, activity_id=s.issues["Z1"],
                                  changes={"capacity": 2})
    with pytest.raises(Refused, match="full"):
        enrolments_service.do_enrol(conn, actor=SYSTEM, activity_id=s.issues["Z1"],
                            member_id=s.members["a"])
    with pytest.raises(Conflict, match="already enrolled"):
        enrolments_service.do_enrol(conn, actor=SYSTEM, activity_id=s.issues["Z1"],
                            member_id=s.members["b"])


def test_csv_imports_enrolments_checkins_orders(conn: Connection, runtime: Runtime,
                                                tmp_path: Path) -> None:
    s = build(conn, runtime)
    number = {k: access_member_by_id(conn, actor=SYSTEM, member_id=v)["number"]
              for k, v in s.members.items()}
    blacklist.do_blacklist(conn, actor=SYSTEM, member_id=s.members["j"], reason="刷屏",
                           capabilities=runtime.capabilities)
    x4 = activities.do_create_activity(conn, actor=SYSTEM, series="X",
                                       starts_on="2026-12-01", ends_on="2026-12-03",
                                       group_ids=[s.groups["X3"]], deposit_fen=5000)
    form = tmp_path / "金数据导出.csv"
    form.write_text("学号,提交时间,渠道\n"
                    f"{number['a']},2026-11-21 10:00,朋友圈\n"
                    f"{number['e']},2026/11/21 11:00,\n"
                    f"{number['j']},2026-11-21 12:00,\n"
                    f"{number['a']},2026-11-21 13:00,\n", encoding="utf-8-sig")
    report = enrolments_service.do_import_enrolments(conn, actor=SYSTEM, activity_id=x4, path=form,
                                             tz=TZ)
    assert (report["enrolled"], report["already"]) == (2, 1)
    assert report["refused"] == [{"line": 4, "member": number["j"],
                                  "reason": "member is blacklisted: 刷屏"}]
    sheet = tmp_path / "打卡.csv"
    sheet.write_text("学号,打卡日期\n" + "".join(
        f"{number['a']},2026-12-0{d}\n" for d in (1, 2, 3)) + f"{number['e']},2026-12-02\n",
                     encoding="utf-8")
    done = enrolments_service.do_import_checkins(conn, actor=SYSTEM, activity_id=x4,
                                                 path=sheet, tz=TZ)
    assert (done["checkins"], done["already"]) == (4, 0)
    streaks = list(conn.execute(select(checkins.c.streak).where(
        checkins.c.member_id == s.members["a"], checkins.c.source == "import")
        .order_by(checkins.c.day)).scalars())
    assert streaks == [1, 2, 3]
    orders = tmp_path / "orders.csv"
    orders.write_text("订单号,类型,金额,学号,活动\nA1,订单,\"1,299.00\","
                      f"{number['a']},X4\nA2,成本,300,,X4\n", encoding="gb18030")
    first = conversions_service.do_import_conversions(conn, actor=SYSTEM, path=orders, tz=TZ)
    again = conversions_service.do_import_conversions(conn, actor=SYSTEM, path=orders, tz=TZ)
    assert (first["recorded"], first["amount"], again["recorded"], again["already"]) == (
        2, 1599.0, 0, 2)
    assert conn.execute(select(func.sum(conversions.c.amount_fen))).scalar_one() == 159900


def test_broken_files_change_nothing(conn: Connection, runtime: Runtime,
                                     tmp_path: Path) -> None:
    s = build(conn, runtime)
    a = access_member_by_id(conn, actor=SYSTEM, member_id=s.members["a"])["number"]
    bad = tmp_path / "form.csv"
    bad.write_text(f"学号,提交时间\n{a},2026-11-21 10:00\n99999,2026-11-21 10:00\n",
                   encoding="utf-8")
    before = snapshot(conn)
    with pytest.raises(InvalidInput, match=r"form.csv: line 3: 学号 99999: no such member"):
        enrolments_service.do_import_enrolments(conn, actor=SYSTEM, activity_id=s.issues["X3"],
                                        path=bad, tz=TZ)
    orders = tmp_path / "orders.csv"
    orders.write_text(f"类型,金额,学号\n订单,12.345,{a}\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"line 2: amount: '12\.345' has more than two"):
        conversions_service.do_import_conversions(conn, actor=SYSTEM, path=orders, tz=TZ)
    with pytest.raises(InvalidInput, match="ends_on: before starts_on"):
        activities.do_create_activity(conn, actor=SYSTEM, series="X", starts_on="2026-12-05",
                                      ends_on="2026-12-01")
    with pytest.raises(InvalidInput, match="targets: 'sales' is not one of"):
        activities.do_update_activity(conn, actor=SYSTEM, activity_id=s.issues["X1"],
                                      changes={"targets": {"sales": 3}})
    assert snapshot(conn) == before
    skipped = enrolments_service.do_import_enrolments(
        conn, actor=SYSTEM, activity_id=s.issues["X3"], path=bad, tz=TZ, on_error="skip")
    assert skipped["errors"] == [{"file": str(bad), "line": 3,
                                  "reason": "学号 99999: no such member"}]


def test_issue_codes_follow_the_series(conn: Connection, runtime: Runtime) -> None:
    build(conn, runtime)
    new_id = activities.do_create_activity(conn, actor=SYSTEM, series="Y",
                                           starts_on="2026-12-01", ends_on="2026-12-21")
    row = activities.access_activity(conn, actor=SYSTEM, ref=new_id)
    assert (row["code"], row["seq"], row["opens_on"]) == ("Y2", 2, "2026-11-17")
    with pytest.raises(Conflict, match="already has issue 2"):
        activities.do_create_activity(conn, actor=SYSTEM, series="Y", seq=2,
                                      starts_on="2026-12-01", ends_on="2026-12-21")
