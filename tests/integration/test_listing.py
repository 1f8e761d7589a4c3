"""Lists that grow are searched, sorted, counted and paged by the database, and staff are
told apart from customers (issue 26)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import groups as groups_table
from qunyun.bootstrap import Runtime
from qunyun.services import activities, enrolments, groups, moderation, outbox, tasks
from qunyun.services.errors import InvalidInput
from qunyun.services.ingest import do_ingest_event
from qunyun.services.listing import Listing
from qunyun.services.members import member_id_by_number, page_members
from qunyun.services.users import SYSTEM
from tests.factories import T0, event, raw_join

# nicknames as chats have them: quotes, emoji, 、, a percent sign and an underscore
NAMES = ['小"王"', "李🌸", "张三、李四", "100%真人", "a_b", "Zoe", "赵钱孙", "王小二"]


def ingest(conn: Connection, runtime: Runtime, raw: dict[str, Any]) -> None:
    ev = event(raw)
    do_ingest_event(conn, ev, config=runtime.ingest_config, received_at=ev.occurred_at)


def g1(conn: Connection) -> int:
    return int(conn.execute(select(groups_table.c.id)
                            .where(groups_table.c.external_id == "g1")).scalar_one())


def fill(conn: Connection, runtime: Runtime, count: int = 23) -> None:
    """An owner (staff by the platform's word) and ``count`` customers in one group."""
    owner = raw_join("j-owner", "g1", "boss", name="群主", minutes=0)
    owner["user_staff"] = True
    ingest(conn, runtime, owner)
    for i in range(count):
        ingest(conn, runtime, raw_join(f"j{i}", "g1", f"u{i}", name=NAMES[i % len(NAMES)]
                                       + str(i), minutes=i + 1, channel=f"海报{i % 3}"))


def test_members_page_sort_search_and_total(conn: Connection, runtime: Runtime) -> None:
    fill(conn, runtime)
    first = page_members(conn, actor=SYSTEM, listing=Listing(per_page=10))
    assert first.total == 24 and first.pages == 3 and len(first.rows) == 10
    assert [r["number"] for r in first.rows] == list(range(10001, 10011))
    last = page_members(conn, actor=SYSTEM, listing=Listing(per_page=10, page=3))
    assert [r["number"] for r in last.rows] == [10021, 10022, 10023, 10024]
    assert (last.first, last.last) == (21, 24)
    beyond = page_members(conn, actor=SYSTEM, listing=Listing(per_page=10, page=9))
    assert beyond.rows == [] and beyond.total == 24 and beyond.first == 0
    newest = page_members(conn, actor=SYSTEM, listing=Listing(sort="last_seen"))
    assert newest.order == "desc" and newest.rows[0]["number"] == 10024
    by_number = page_members(conn, actor=SYSTEM, listing=Listing(sort="number", order="desc"))
    assert by_number.rows[0]["number"] == 10024
    # search is literal: quotes, % and _ are not wildcards; digits find a member number
    assert [r["display_name"] for r in page_members(
        conn, actor=SYSTEM, listing=Listing(search='小"王"')).rows] == ['小"王"0', '小"王"8',
                                                                       '小"王"16']
    assert page_members(conn, actor=SYSTEM, listing=Listing(search="100%")).total == 3
    assert page_members(conn, actor=SYSTEM, listing=Listing(search="a_b")).total == 3
    assert page_members(conn, actor=SYSTEM, listing=Listing(search="%")).total == 3
    assert page_members(conn, actor=SYSTEM, listing=Listing(search="、")).total == 3
    found = page_members(conn, actor=SYSTEM, listing=Listing(search="10005"))
    assert [r["number"] for r in found.rows] == [10005]
    assert page_members(conn, actor=SYSTEM,
                        listing=Listing(search="99999999999999999999999")).total == 0


def test_staff_are_marked_and_can_be_left_out(conn: Connection, runtime: Runtime) -> None:
    fill(conn, runtime, count=3)
    rows = page_members(conn, actor=SYSTEM).rows
    assert [r["staff"] for r in rows] == [True, False, False, False]
    assert [r["number"] for r in page_members(conn, actor=SYSTEM, who="staff").rows] == [10001]
    assert page_members(conn, actor=SYSTEM, who="customers").total == 3
    # a member the platform later says is staff is staff from then on
    later = raw_join("j-late", "g2", "u2", name="张三、李四2", minutes=30)
    later["user_staff"] = True
    ingest(conn, runtime, later)
    assert page_members(conn, actor=SYSTEM, who="staff").total == 2
    people = groups.page_group_members(conn, actor=SYSTEM, group_id=g1(conn))
    assert people.total == 4 and [r["staff"] for r in people.rows][-1] is True  # the owner
    with pytest.raises(InvalidInput):
        page_members(conn, actor=SYSTEM, who="boss")


def test_group_members_search_by_channel_and_sort(conn: Connection, runtime: Runtime) -> None:
    fill(conn, runtime, count=9)
    p = groups.page_group_members(conn, actor=SYSTEM, group_id=g1(conn),
                                  listing=Listing(search="海报1"))
    assert p.total == 3 and {r["channel"] for r in p.rows} == {"海报1"}
    by_name = groups.page_group_members(conn, actor=SYSTEM, group_id=g1(conn),
                                        listing=Listing(sort="name"))
    names = [r["display_name"] for r in by_name.rows]
    assert names == sorted(names) or len(set(names)) == len(names)  # the database's collation
    assert groups.get_group_detail(conn, actor=SYSTEM, group_id=g1(conn))["member_count"] == 10


@pytest.mark.parametrize("bad", [
    {"sort": "password"}, {"order": "sideways"}, {"page": 0}, {"page": 10**20},
    {"per_page": 0}, {"per_page": 501},
])
def test_a_bad_listing_is_refused_by_name(conn: Connection, runtime: Runtime,
                                          bad: dict[str, Any]) -> None:
    fill(conn, runtime, count=1)
    with pytest.raises(InvalidInput) as caught:
        page_members(conn, actor=SYSTEM, listing=Listing(**bad))
    word = next(iter(bad)).replace("per_page", "per page")
    assert word in str(caught.value)


def test_tasks_outbox_decisions_and_enrolments_page_alike(conn: Connection,
                                                          runtime: Runtime) -> None:
    fill(conn, runtime, count=5)
    for i in range(7):
        tasks.create_task(conn, kind="manual", title=f"移出广告号{i}", reason="平台不能自动移出",
                          now=T0)
    page = tasks.page_tasks(conn, actor=SYSTEM, listing=Listing(per_page=5))
    assert page.total == 7 and len(page.rows) == 5 and page.rows[0]["title"] == "移出广告号6"
    assert tasks.page_tasks(conn, actor=SYSTEM, listing=Listing(search="广告号3")).total == 1
    assert outbox.page_outbox(conn, actor=SYSTEM).total == outbox.page_outbox(
        conn, actor=SYSTEM, listing=Listing(per_page=1)).total
    with pytest.raises(InvalidInput):
        outbox.page_outbox(conn, actor=SYSTEM, status="lost")
    assert moderation.page_decisions(conn, actor=SYSTEM).total == 0
    activities.do_create_series(conn, actor=SYSTEM, code="A", name="打卡营")
    activities.do_create_activity(conn, actor=SYSTEM, series="A", starts_on="2026-11-21",
                                  ends_on="2026-11-27")
    for number in range(10002, 10007):
        enrolments.do_enrol(conn, actor=SYSTEM, activity_id="A1",
                            member_id=member_id_by_number(conn, number),
                            channel="海报1" if number % 2 else "海报2", at=T0)
    signed = enrolments.page_enrolments(conn, actor=SYSTEM, activity_id="A1",
                                        listing=Listing(search="海报2"))
    assert signed.total == 3  # 10002, 10004, 10006
    by_number = enrolments.page_enrolments(conn, actor=SYSTEM, activity_id="A1",
                                           listing=Listing(sort="number", order="desc"))
    assert [r["number"] for r in by_number.rows] == [10006, 10005, 10004, 10003, 10002]
    assert member_id_by_number(conn, 10006) == by_number.rows[0]["member_id"]
