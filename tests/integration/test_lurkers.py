"""Lurkers on real databases: who counts (silent N days, joined at least that long ago;
never staff, an admin or the owner), a dry run that changes nothing, a removal with the
notice through the outbox, someone who spoke meanwhile left alone, and a platform that
cannot remove (WeCom) turning each removal into a staff task."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Connection, select

from qunyun.adapters.platforms.wecom.adapter import CAPABILITIES as WECOM_CAPABILITIES
from qunyun.adapters.storage.tables import outbox, staff_tasks
from qunyun.bootstrap import Runtime
from qunyun.services import lurkers
from qunyun.services.errors import InvalidInput
from qunyun.services.members import member_id_by_number
from qunyun.services.users import SYSTEM
from tests.dbhelpers import snapshot
from tests.factories import T0, raw_join, raw_message
from tests.integration.test_lifecycle import feed

DAY = 24 * 60


def group_with_lurkers(conn: Connection, runtime: Runtime) -> int:
    """g1 from day 0: owner o, staff s, admin a, quiet q1 (never spoke) and q2 (spoke on day
    1), talker t (spoke on day 50), newcomer n (joined day 45, never spoke)."""
    raws = [{"type": "join", "id": f"j{u}", "at": (T0).isoformat(), "chat": "g1",
             "user": u, "user_name": name, "scene": "invite",
             **({"user_staff": True} if u == "s" else {})}
            for u, name in (("o", "群主"), ("s", "小助手"), ("a", "管理员"), ("q1", '潜水"一号"'),
                            ("q2", "{group}"), ("t", "话痨"))]
    raws.append({"type": "group", "id": "grp", "at": T0.isoformat(), "chat": "g1",
                 "owner": "o", "admins": ["a"]})
    raws += [raw_message("m1", "g1", "q2", "早", minutes=1 * DAY),
             raw_message("m2", "g1", "t", "大家好", minutes=50 * DAY),
             raw_join("jn", "g1", "n", minutes=45 * DAY, name="新人")]
    return feed(conn, runtime, raws)


def test_who_counts_as_a_lurker_and_a_dry_run_changes_nothing(conn: Connection,
                                                              runtime: Runtime) -> None:
    gid = group_with_lurkers(conn, runtime)
    now = T0 + timedelta(days=60)
    rows = lurkers.list_lurkers(conn, actor=SYSTEM, group_id=gid, days=30, now=now)
    assert [(r["name"], r["silent_days"]) for r in rows] == [('潜水"一号"', 60), ("{group}", 59)]
    assert rows[0]["last_message_at"] is None and rows[1]["activities"] == 0
    with pytest.raises(InvalidInput):
        lurkers.list_lurkers(conn, actor=SYSTEM, group_id=gid, days=0, now=now)
    before = snapshot(conn)
    plan = lurkers.do_remove_lurkers(conn, actor=SYSTEM, group_id=gid, days=30,
                                     member_ids=None, notice=None, dry_run=True,
                                     capabilities=runtime.capabilities, now=now)
    assert plan["dry_run"] and [r["name"] for r in plan["removing"]] == ['潜水"一号"',
                                                                         "{group}"]
    assert snapshot(conn) == before


def test_removal_sends_the_notice_and_leaves_those_who_spoke(conn: Connection,
                                                             runtime: Runtime) -> None:
    gid = group_with_lurkers(conn, runtime)
    now = T0 + timedelta(days=60)
    q1, q2, talker, staff = (member_id_by_number(conn, n) for n in (10004, 10005, 10006,
                                                                    10002))
    # q2 speaks after the list was shown: chosen, but no longer a lurker
    feed(conn, runtime, [raw_message("m3", "g1", "q2", "我还在", minutes=59 * DAY)])
    done = lurkers.do_remove_lurkers(
        conn, actor=SYSTEM, group_id=gid, days=30, member_ids=[q1, q2, talker, staff],
        notice="{name}，「{group}」{days} 天未发言，先移出啦", dry_run=False,
        capabilities=runtime.capabilities, now=now)
    assert [r["member_id"] for r in done["removing"]] == [q1]
    assert done["skipped"] == [q2, talker, staff] and done["tasks"] == 0
    sent = [(r.action_type, r.member_id, r.payload.get("text")) for r in conn.execute(
        select(outbox.c.action_type, outbox.c.member_id, outbox.c.payload)
        .where(outbox.c.rule == "lurkers").order_by(outbox.c.id))]
    assert sent == [("send_private", q1, '潜水"一号"，「群g1」30 天未发言，先移出啦'),
                    ("remove_member", q1, None)]
    # asked again the same day: the same removal, not a second one
    lurkers.do_remove_lurkers(conn, actor=SYSTEM, group_id=gid, days=30, member_ids=[q1],
                              notice="", dry_run=False, capabilities=runtime.capabilities,
                              now=now)
    removals = conn.execute(select(outbox.c.id).where(
        outbox.c.rule == "lurkers", outbox.c.action_type == "remove_member")).all()
    assert len(removals) == 1


def test_where_the_platform_cannot_remove_each_removal_is_a_staff_task(
        conn: Connection, runtime: Runtime) -> None:
    gid = group_with_lurkers(conn, runtime)
    done = lurkers.do_remove_lurkers(
        conn, actor=SYSTEM, group_id=gid, days=30, member_ids=None, notice=None,
        dry_run=False, capabilities=lambda _p: WECOM_CAPABILITIES,
        now=T0 + timedelta(days=60))
    assert done["tasks"] == 2
    titles = conn.execute(select(staff_tasks.c.title).where(
        staff_tasks.c.kind == "remove_member")).scalars().all()
    assert len(titles) == 2 and all("30 天未发言" in t for t in titles)
