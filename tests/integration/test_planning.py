"""Rates from the team's own history: a past activity's funnel (joined ÷ reached where reach
was entered, deposits ÷ joined, purchases ÷ deposits) when enough people stand under a
rate, the seed's default where they do not — and the answer says which."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import identities
from qunyun.bootstrap import Runtime
from qunyun.services import activities, conversions, enrolments, planning
from qunyun.services.errors import InvalidInput
from qunyun.services.users import SYSTEM
from tests.factories import T0, raw_join
from tests.integration.test_lifecycle import feed

TZ = ZoneInfo("Asia/Shanghai")
NOW = T0 + timedelta(days=40)


def past_camp(conn: Connection, runtime: Runtime) -> None:
    """40 joined of 400 reached; 8 paid a deposit; 3 bought."""
    gid = feed(conn, runtime, [raw_join(f"j{i}", "camp", f"u{i}", minutes=60 + i)
                               for i in range(40)])
    activities.do_create_series(conn, actor=SYSTEM, code="E", name="英语营")
    camp = activities.do_create_activity(
        conn, actor=SYSTEM, series="E", opens_on=T0.date(), starts_on=T0.date(),
        ends_on=(T0 + timedelta(days=20)).date(), group_ids=[gid],
        reach={"poster": 300, "staff": 100})
    ids = [int(conn.execute(select(identities.c.member_id).where(
        identities.c.external_id == f"u{i}")).scalar_one()) for i in range(8)]
    for member_id in ids:
        enrolments.do_enrol(conn, actor=SYSTEM, activity_id=camp, member_id=member_id,
                            deposit_fen=9900, at=T0 + timedelta(days=1))
    for i, member_id in enumerate(ids[:3]):
        conversions.do_record_conversion(conn, actor=SYSTEM, kind="order", amount_fen=199900,
                                         activity_id=camp, member_id=member_id,
                                         external_ref=f"O-{i}")


def test_rates_from_history_where_it_says_enough(conn: Connection, runtime: Runtime) -> None:
    empty = planning.do_calculate(conn, actor=SYSTEM, values={"target_deposits": 20},
                                  tz=TZ, now=NOW)
    assert {k: (r["value"], r["source"]) for k, r in empty["rates"].items()} == {
        "join_rate": (0.1, "default"), "deposit_rate": (0.04, "default"),
        "purchase_rate": (0.5, "default")}
    past_camp(conn, runtime)
    found = planning.history_rates(conn, actor=SYSTEM, tz=TZ, now=NOW)
    assert {k: (r.value, r.hits, r.over, r.activities) for k, r in found.items()} == {
        "join_rate": (0.1, 40, 400, 1), "deposit_rate": (0.2, 8, 40, 1)}  # 3 of 8: too few
    plan = planning.do_calculate(conn, actor=SYSTEM, values={
        "target_deposits": 20, "join_rate": "0.05", "staff": 5, "contacts_per_day": 120},
        tz=TZ, now=NOW)
    assert {k: r["source"] for k, r in plan["rates"].items()} == {
        "join_rate": "given", "deposit_rate": "history", "purchase_rate": "default"}
    # 20 deposits at 20 % → 100 members; at 5 % joining → 2,000 reached; 4 staff-days
    assert (plan["members"], plan["reach"], plan["groups"], plan["days"]) == (100, 2000, 2, 4)
    # an activity that has not begun says nothing yet
    assert planning.history_rates(conn, actor=SYSTEM, tz=TZ, now=T0 - timedelta(days=2)) == {}


def test_bad_numbers_are_named(conn: Connection) -> None:
    for values, field in (({"audience": "五千"}, "audience"),
                          ({"audience": 10, "fill": "nan"}, "fill"),
                          ({"audience": 10, "bogus": 1}, "bogus"),
                          ({"audience": 10, "deposit_rate": 4}, "deposit_rate")):
        with pytest.raises(InvalidInput, match=field):
            planning.do_calculate(conn, actor=SYSTEM, values=values, tz=TZ, now=NOW)
