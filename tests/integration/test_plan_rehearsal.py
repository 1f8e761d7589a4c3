"""A plan rehearsed on the simulator (F33): the simulated community, counted by plan
versus actual on the rehearsal's own database, lands near the model's forecast; the same
seed gives the same rehearsal; broadcasts reach the groups through the real worker and
the crowd answers, and a day with too many of them makes people leave; the team's
database is untouched but for one audit row; refusals name the problem."""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import audit_log
from qunyun.bootstrap import Runtime
from qunyun.services import activities, broadcasts, plan_rehearsal, plans
from qunyun.services.errors import InvalidInput
from qunyun.services.users import SYSTEM
from tests.dbhelpers import snapshot
from tests.factories import T0, raw_join
from tests.integration.test_lifecycle import feed

TZ = ZoneInfo("Asia/Shanghai")
FIRST = (T0 + timedelta(days=10)).astimezone(TZ).date()  # 2026-11-30


def make_plan(conn: Connection, runtime: Runtime, *, audience: int = 2000, days: int = 6,
              name: str = "三期彩排", goal: bool = True) -> tuple[int, list[int]]:
    """Three groups (each with its owner), an activity with a deposit and a price, a plan
    over ``days`` days: recruiting on the first four (or all but the last two), launch on
    the last."""
    gids = [feed(conn, runtime, [raw_join(f"o{i}", f"camp{i}", f"owner{i}")])
            for i in range(3)]
    activities.do_create_series(conn, actor=SYSTEM, code="R", name="彩排营")
    camp = activities.do_create_activity(conn, actor=SYSTEM, series="R", opens_on=FIRST,
                                         starts_on=FIRST, ends_on=FIRST + timedelta(days=9),
                                         group_ids=gids, deposit_fen=9900, price_fen=199900)
    plan = plans.do_create_plan(
        conn, actor=SYSTEM, name=name, starts_on=FIRST,
        ends_on=FIRST + timedelta(days=days - 1), activity=camp,
        goal={"audience": audience, "join_rate": 0.1, "deposit_rate": 0.1,
              "purchase_rate": 0.5, "capacity": 100, "fill": 0.9, "staff": 2,
              "contacts_per_day": 300} if goal else None, tz=TZ, now=T0)
    pid = int(plan["id"])
    plans.do_add_stage(conn, actor=SYSTEM, plan_id=pid, kind="recruiting", name="招募",
                       starts_on=FIRST, ends_on=FIRST + timedelta(days=min(3, days - 2)), now=T0)
    plans.do_add_stage(conn, actor=SYSTEM, plan_id=pid, kind="launch", name="发售",
                       starts_on=FIRST + timedelta(days=days - 1),
                       ends_on=FIRST + timedelta(days=days - 1), now=T0)
    return pid, gids


def rehearse(runtime: Runtime, pid: int, seed: int = 7) -> dict[str, Any]:
    return plan_rehearsal.do_rehearse_plan(runtime.uow, actor=SYSTEM, plan_id=pid, seed=seed,
                                           settings=runtime.settings,
                                           capabilities=runtime.capabilities)


def near(simulated: float, expected: float, sds: float = 3.0) -> bool:
    """Within ``sds`` standard deviations of a count with that mean (Poisson-like)."""
    return abs(simulated - expected) <= sds * math.sqrt(max(expected, 1.0))


@pytest.mark.slow
def test_rehearsal_lands_near_its_forecast(conn: Connection, runtime: Runtime) -> None:
    pid, _ = make_plan(conn, runtime)
    before = snapshot(conn)
    out = rehearse(runtime, pid)
    assert snapshot(conn) == before  # nothing simulated reached the team's database
    audits = conn.execute(select(audit_log.c.action, audit_log.c.detail).where(
        audit_log.c.action == "plan.rehearse")).all()
    assert len(audits) == 1 and audits[0][1]["seed"] == 7

    totals = out["totals"]
    # two staff × 300 contacts a day over the recruiting days until 2,000 are reached
    assert [d["reached"] for d in out["days"]] == [600, 600, 600, 200, 0, 0]
    assert totals["joined"]["forecast"] == 200.0 and totals["joined"]["target"] == 200
    assert near(totals["joined"]["simulated"], 200)
    # everyone pays on the launch day (the last): the forecast puts all 20 deposits there
    assert [d["forecast"]["deposit"] for d in out["days"]] == [0, 0, 0, 0, 0, 20.0]
    assert near(totals["deposit"]["simulated"], 20)
    assert totals["deposit"]["simulated"] == out["days"][-1]["simulated"]["deposit"]
    assert totals["enrolled"]["simulated"] == totals["deposit"]["simulated"]
    assert near(totals["purchase"]["simulated"], totals["purchase"]["forecast"])
    assert abs(totals["active"]["simulated"] - totals["active"]["forecast"]) \
        <= 0.35 * totals["active"]["forecast"]
    # the goal spread deposits evenly from day one: the rehearsal shows those days short
    assert {s["metric"] for s in out["short"]} >= {"deposit"}
    assert out["short"][0]["day"] == FIRST.isoformat()
    # the groups fill in order at 90 (capacity 100 × 0.9): the first fills, the last not
    first, *_, last = out["groups"]
    assert first["room"] == 90 and first["full_on"] is not None and last["full_on"] is None
    assert sum(g["members"] for g in out["groups"]) == out["days"][-1]["members"]
    assert out["room"]["room"] == 270 and out["room"]["groups_short"] == 0
    # the lead gets a task for each short day (the worker's hourly check, in the rehearsal)
    assert out["staff"]["tasks_by_kind"].get("plan_variance", 0) >= 1
    assert all(c["ok"] for c in out["calibration"]), out["calibration"]
    assert out["money_counted"] and out["money_lost"] == 0


@pytest.mark.slow
def test_same_seed_same_rehearsal(conn: Connection, runtime: Runtime) -> None:
    pid, _ = make_plan(conn, runtime, audience=600, days=3)
    assert rehearse(runtime, pid) == rehearse(runtime, pid)


@pytest.mark.slow
def test_pushes_reach_the_crowd_and_too_many_tire_it(conn: Connection,
                                                     runtime: Runtime) -> None:
    pid, gids = make_plan(conn, runtime, audience=1200, days=5)
    calm = rehearse(runtime, pid)
    assert calm["staff"]["pushes"] == 0 and calm["reactions"]["tired_group_days"] == 0
    day = FIRST + timedelta(days=3)
    for hour in range(9, 17):  # eight notices on one day; the team's cap lets six a group
        broadcasts.do_create_broadcast(
            conn, actor=SYSTEM, name=f"通知{hour}", target={"groups": gids},
            text=f"{hour}点 福利提醒", send_at=datetime.combine(day, time(hour), tzinfo=TZ),
            now=T0)
    pushed = rehearse(runtime, pid)
    per_day = {d["day"]: d["pushes"] for d in pushed["days"]}
    assert per_day[day.isoformat()] == 6 * len(gids)  # the cap held, the rest queued
    assert per_day[(day + timedelta(days=1)).isoformat()] == 2 * len(gids)
    assert pushed["reactions"]["tired_group_days"] == len(gids)
    assert pushed["reactions"]["left"] > calm["reactions"]["left"]
    assert pushed["reactions"]["muted"] > 0


def test_refusals_change_nothing(conn: Connection, runtime: Runtime) -> None:
    bare = plans.do_create_plan(conn, actor=SYSTEM, name="空计划", starts_on=FIRST,
                                ends_on=FIRST + timedelta(days=3), tz=TZ, now=T0)
    pid, _ = make_plan(conn, runtime, goal=False)

    def refused(plan_id: int, match: str, seed: int = 7) -> None:
        before = snapshot(conn)
        audits = conn.execute(select(audit_log.c.id)).all()
        with pytest.raises(InvalidInput, match=match):
            rehearse(runtime, plan_id, seed)
        assert snapshot(conn) == before
        assert conn.execute(select(audit_log.c.id)).all() == audits

    refused(int(bare["id"]), "no groups to rehearse in")
    refused(pid, "no goal and no join targets")
    refused(pid, "seed", seed=-1)
    plans.do_set_targets(conn, actor=SYSTEM, plan_id=pid, metric="joined", total=300_000,
                         now=T0)
    refused(pid, "at most 20000 joins")
