"""Merging three small groups into one whose room runs out (F10): the most active get the
target's places, the rest go to an overflow group planned for them and are invited once it
has its chat and join code; staff, owners and those already in the target stay; each
member's move is tracked; when the time is up the emptied groups dissolve step by step."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Connection, func, select

from qunyun.adapters.platforms.sandbox.adapter import SandboxAdapter
from qunyun.adapters.storage.tables import groups, identities, outbox, staff_tasks
from qunyun.bootstrap import Runtime
from qunyun.services import group_merges, group_roles, join_codes, lifecycle, schedules
from qunyun.services.errors import Conflict, InvalidInput
from qunyun.services.groups import do_update_group
from qunyun.services.users import SYSTEM
from tests.dbhelpers import snapshot
from tests.factories import T0, raw_join, raw_message
from tests.integration.test_lifecycle import feed

NOW = T0 + timedelta(days=10)


def gid_of(conn: Connection, chat: str) -> int:
    return int(conn.execute(select(groups.c.id).where(groups.c.external_id == chat))
               .scalar_one())


def mid(conn: Connection, user: str) -> int:
    return int(conn.execute(select(identities.c.member_id).where(
        identities.c.external_id == user)).scalar_one())


def test_three_groups_merge_into_one_with_overflow(conn: Connection, runtime: Runtime,
                                                   sandbox: SandboxAdapter) -> None:
    joins = [raw_join(f"a{u}", "g1", u, minutes=i) for i, u in enumerate(
        ("m1a", "m1b", "m1c", "m1d", "p1"))]
    joins += [raw_join(f"b{u}", "g2", u, minutes=10 + i) for i, u in enumerate(
        ("m2a", "m2b", "x"))]
    joins += [raw_join(f"c{u}", "g3", u, minutes=20 + i) for i, u in enumerate(
        ("m1a", "m3a", "m3b"))]
    joins += [raw_join(f"t{u}", "t", u, minutes=30 + i) for i, u in enumerate(
        ("t1", "t2", "x"))]
    # the most recently active get the target's places
    talk = [raw_message(f"s{u}", chat, u, "最近在忙", minutes=60 * 24 * 8 + i)
            for i, (chat, u) in enumerate((("g1", "m1c"), ("g2", "m2a"), ("g3", "m3b")))]
    feed(conn, runtime, joins + talk)
    g1, g2, g3, t = (gid_of(conn, c) for c in ("g1", "g2", "g3", "t"))
    do_update_group(conn, actor=SYSTEM, group_id=t, changes={"capacity": 6, "name": "主群"},
                    now=NOW)
    group_roles.do_set_role(conn, actor=SYSTEM, group_id=g1, member_id=mid(conn, "p1"),
                            role="presenter", now=NOW)
    code = join_codes.do_create_join_code(runtime.uow, actor=SYSTEM, adapter=sandbox,
                                          account="demo", channel="合并主群", chats=["t"])

    before = snapshot(conn)
    plan = group_merges.do_merge(conn, actor=SYSTEM, source_ids=[g1, g2, g3], target_id=t,
                                 dry_run=True, capabilities=runtime.capabilities, now=NOW)
    assert snapshot(conn) == before  # a dry run changes nothing
    assert plan["moving"] == 8  # m1a once; x already in the target; the presenter stays
    assert plan["target"] == {"id": t, "name": "主群", "room": 3, "members": 3}
    assert plan["overflow"] == {"id": None, "name": "主群（二群）", "planned": True,
                                "members": 5}
    assert [s["members"] for s in plan["sources"]] == [4, 2, 2]

    made = group_merges.do_merge(conn, actor=SYSTEM, source_ids=[g1, g2, g3], target_id=t,
                                 wait=timedelta(days=2), gap=timedelta(hours=1),
                                 dry_run=False, capabilities=runtime.capabilities, now=NOW)
    overflow = made["overflow"]["id"]
    assert conn.execute(select(groups.c.state, groups.c.name).where(
        groups.c.id == overflow)).one() == ("planned", "主群（二群）")
    by_member = {p["member_id"]: p for p in made["people"]}
    to_target = {m for m, p in by_member.items() if p["to_group_id"] == t}
    assert to_target == {mid(conn, u) for u in ("m1c", "m2a", "m3b")}
    assert mid(conn, "p1") not in by_member and mid(conn, "x") not in by_member
    invitations = conn.execute(select(outbox.c.group_id, outbox.c.payload).where(
        outbox.c.rule == "group_merge", outbox.c.action_type == "send_text")).all()
    assert sorted(r.group_id for r in invitations) == sorted([g1, g2, g3])
    assert all(code["qr_code"] in r.payload["text"] and "主群" in r.payload["text"]
               for r in invitations)
    assert sorted(m for r in invitations for m in r.payload["mention_member_ids"]) == \
        sorted(to_target)
    (task,) = conn.execute(select(staff_tasks.c.title, staff_tasks.c.group_id).where(
        staff_tasks.c.kind == "hand_to_staff")).all()
    assert task.group_id == overflow and "5 位成员" in task.title
    target_row, overflow_row = made["destinations"]
    assert (target_row["assigned"], target_row["invited"], target_row["joined"]) == (3, 3, 0)
    assert (overflow_row["assigned"], overflow_row["invited"]) == (5, 0)

    # two of them join the target; the overflow group gets its chat and code
    feed(conn, runtime, [raw_join("j1", "t", "m1c", minutes=60 * 24 * 10 + 5),
                         raw_join("j2", "t", "m2a", minutes=60 * 24 * 10 + 6)])
    assert group_merges.invite_pending(conn, capabilities=runtime.capabilities,
                                       now=NOW + timedelta(hours=1)) == 0
    lifecycle.do_link_chat(conn, actor=SYSTEM, group_id=overflow, chat_id="t2",
                           now=NOW + timedelta(hours=2))
    second = join_codes.do_create_join_code(runtime.uow, actor=SYSTEM, adapter=sandbox,
                                            account="demo", channel="合并二群", chats=["t2"])
    assert group_merges.invite_pending(conn, capabilities=runtime.capabilities,
                                       now=NOW + timedelta(hours=3)) == 5
    later = [r for r in conn.execute(select(outbox.c.payload).where(
        outbox.c.rule == "group_merge", outbox.c.action_type == "send_text")).scalars()
        if second["qr_code"] in r["text"]]
    assert sorted(m for r in later for m in r["mention_member_ids"]) == sorted(
        set(by_member) - to_target)
    progress = group_merges.access_merge(conn, actor=SYSTEM, merge_id=made["merge_id"])
    assert [(d["assigned"], d["invited"], d["joined"]) for d in progress["destinations"]] == \
        [(3, 3, 2), (5, 5, 0)]

    # the time is up: each emptied group runs the dissolution SOP, hour by hour
    schedules.fire_due(runtime.uow, config=runtime.ingest_config, now=NOW + timedelta(days=2))
    states = dict(conn.execute(select(groups.c.id, groups.c.state).where(
        groups.c.id.in_([g1, g2, g3, t]))).all())
    assert states == {g1: "dissolving", g2: "dissolving", g3: "dissolving", t: "active"}
    for hours in (1, 2, 3):
        schedules.fire_due(runtime.uow, config=runtime.ingest_config,
                           now=NOW + timedelta(days=2, hours=hours))
    assert {s for s in conn.execute(select(groups.c.state).where(
        groups.c.id.in_([g1, g2, g3]))).scalars()} == {"closed"}
    notices = [p["text"] for p in conn.execute(select(outbox.c.payload).where(
        outbox.c.rule == "dissolution", outbox.c.action_type == "send_text")).scalars()]
    # the target's name as the platform reports it by then (a join carried its chat name)
    name = conn.execute(select(groups.c.name).where(groups.c.id == t)).scalar_one()
    assert len(notices) == 3 and all(f"本群已合并到「{name}」" in n for n in notices)
    assert group_merges.access_merge(conn, actor=SYSTEM,
                                     merge_id=made["merge_id"])["status"] == "done"
    with pytest.raises(Conflict):
        group_merges.do_finish(conn, actor=SYSTEM, merge_id=made["merge_id"],
                               capabilities=runtime.capabilities, now=NOW + timedelta(days=3))


def test_refusals_leave_everything_as_it_was(conn: Connection, runtime: Runtime) -> None:
    feed(conn, runtime, [raw_join(f"a{i}", "g1", f"u{i}", minutes=i) for i in range(5)]
         + [raw_join("b0", "g2", "v0"), raw_join("c0", "t", "w0"), raw_join("d0", "o", "z0")])
    g1, g2, t, o = (gid_of(conn, c) for c in ("g1", "g2", "t", "o"))
    do_update_group(conn, actor=SYSTEM, group_id=t, changes={"capacity": 3}, now=NOW)
    do_update_group(conn, actor=SYSTEM, group_id=o, changes={"capacity": 3}, now=NOW)
    before = snapshot(conn)
    count_before = conn.execute(select(func.count()).select_from(groups)).scalar_one()

    def merge(**kw: object) -> object:
        args: dict[str, object] = {"source_ids": [g1, g2], "target_id": t, "dry_run": False,
                                   "capabilities": runtime.capabilities, "now": NOW}
        return group_merges.do_merge(conn, actor=SYSTEM, **{**args, **kw})  # type: ignore

    with pytest.raises(Conflict, match="do not fit"):
        merge(overflow_id=o)  # 6 movers: 2 places in the target, 2 in the overflow group
    with pytest.raises(InvalidInput):
        merge(source_ids=[g1, t])
    with pytest.raises(InvalidInput):
        merge(source_ids=[])
    with pytest.raises(InvalidInput):
        merge(wait=timedelta(minutes=5))
    lifecycle.do_set_state(conn, actor=SYSTEM, group_id=g2, state="dissolving", now=NOW)
    after_move = snapshot(conn)
    with pytest.raises(Conflict, match=r"解散中|dissolving"):
        merge()
    assert snapshot(conn) == after_move
    assert conn.execute(select(func.count()).select_from(groups)).scalar_one() == count_before
    assert before["groups"] == after_move["groups"]
