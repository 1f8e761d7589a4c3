"""Group lifecycle on real databases: states move by the rules (a quiet week cools an active
group and a staff task says so, two lively days bring it back, a recruiting group turns
active when full or at its start), by hand only as allowed (closed stays closed, with the
database as before), planned groups linked to their chat later, the board. The page and
API: tests/web/test_lifecycle_web.py; the commands: tests/cli/test_groups_cli.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import audit_log, groups, playbook_groups, staff_tasks
from qunyun.bootstrap import Runtime
from qunyun.services import lifecycle, playbooks
from qunyun.services.errors import Conflict, InvalidInput
from qunyun.services.groups import do_update_group, get_group_detail
from qunyun.services.ingest import do_ingest_event
from qunyun.services.users import SYSTEM
from tests.dbhelpers import snapshot
from tests.factories import T0, event, raw_join, raw_message

TZ = ZoneInfo("Asia/Shanghai")
DAY = 24 * 60


def feed(conn: Connection, runtime: Runtime, raws: list[dict[str, Any]]) -> int:
    gid = 0
    for raw in raws:
        ev = event(raw)
        gid = do_ingest_event(conn, ev, config=runtime.ingest_config,
                              received_at=ev.occurred_at).group_id or gid
    return gid


def lively_days(chat: str, first_day: int, days: int, speakers: int) -> list[dict[str, Any]]:
    """``speakers`` members of ``chat`` each say something on each of ``days`` days."""
    return [raw_message(f"{chat}-{first_day + d}-{s}", chat, f"{chat}u{s}", f"第{d}天 {s}",
                        minutes=(first_day + d) * DAY + 60 + s)
            for d in range(days) for s in range(speakers)]


def test_the_rules_cool_a_quiet_group_and_bring_it_back(conn: Connection,
                                                        runtime: Runtime) -> None:
    joins = [raw_join(f"j{i}", "g1", f"g1u{i}", minutes=i) for i in range(6)]
    gid = feed(conn, runtime, joins + lively_days("g1", 0, 3, 5))
    # days 3–9 quiet (one person a day): a week under 3 speakers a day
    feed(conn, runtime, lively_days("g1", 3, 7, 1))
    assert lifecycle.advance(conn, now=T0 + timedelta(days=6), tz=TZ) == []  # not a week yet
    moves = lifecycle.advance(conn, now=T0 + timedelta(days=9, hours=23), tz=TZ)
    assert [(m["group_id"], m["from"], m["to"], m["why"]) for m in moves] == [
        (gid, "active", "cooling", "quiet")]
    assert moves[0]["reason"] == "连续 7 天每天发言不足 3 人"
    assert lifecycle.advance(conn, now=T0 + timedelta(days=9, hours=23), tz=TZ) == []  # once
    (task,) = conn.execute(select(staff_tasks).where(staff_tasks.c.kind == "group_cooling")
                           ).mappings().all()
    assert task["group_id"] == gid and "降温" in task["title"]
    row = conn.execute(select(audit_log.c.actor, audit_log.c.detail).where(
        audit_log.c.action == "group.state")).one()
    assert row.detail["to"] == "cooling" and row.detail["why"] == "quiet"
    # two lively days: active again; judged only on the days since it cooled
    feed(conn, runtime, lively_days("g1", 10, 2, 4))
    moves = lifecycle.advance(conn, now=T0 + timedelta(days=11, hours=2), tz=TZ)
    assert [(m["from"], m["to"], m["why"]) for m in moves] == [
        ("cooling", "active", "recovered")]
    assert lifecycle.advance(conn, now=T0 + timedelta(days=12, hours=23), tz=TZ) == []
    # the group's own thresholds: 3 quiet days are enough for this one
    do_update_group(conn, actor=SYSTEM, group_id=gid, changes={
        "cooling_days": "3", "cooling_speakers": "5"}, now=T0 + timedelta(days=12))
    moves = lifecycle.advance(conn, now=T0 + timedelta(days=14, hours=23), tz=TZ)
    assert [m["to"] for m in moves] == ["cooling"]
    board = {c["state"]: [g["id"] for g in c["groups"]]
             for c in lifecycle.board(conn, actor=SYSTEM, now=T0 + timedelta(days=15), tz=TZ)}
    assert board["cooling"] == [gid]


def test_a_planned_group_recruits_then_turns_active_when_full_or_at_its_start(
        conn: Connection, runtime: Runtime) -> None:
    plan = lifecycle.do_plan_group(conn, actor=SYSTEM, platform="sandbox", name="三期福利群",
                                   capacity=3, now=T0)
    assert plan["state"] == "planned" and lifecycle.is_placeholder(plan["external_id"])
    playbook = playbooks.do_create_playbook(conn, actor=SYSTEM, name="开营 SOP")
    playbooks.do_attach_groups(conn, actor=SYSTEM, playbook_id=playbook["id"],
                               group_ids=[plan["id"]])
    # no chat yet: nothing moves it, even with a join code
    assert lifecycle.advance(conn, now=T0 + timedelta(hours=1), tz=TZ) == []
    # the bot saw the chat first (it exists as an active group); linking hands it the plan
    gid = feed(conn, runtime, [raw_join("j0", "g3", "u0", minutes=5)])
    linked = lifecycle.do_link_chat(conn, actor=SYSTEM, group_id=plan["id"], chat_id="g3",
                                    now=T0 + timedelta(hours=2))
    assert (linked["id"], linked["state"], linked["capacity"]) == (gid, "planned", 3)
    assert conn.execute(select(groups.c.id).where(groups.c.id == plan["id"])).first() is None
    assert conn.execute(select(playbook_groups.c.group_id).where(
        playbook_groups.c.playbook_id == playbook["id"])).scalar_one() == gid
    with pytest.raises(Conflict):
        lifecycle.do_link_chat(conn, actor=SYSTEM, group_id=gid, chat_id="g9",
                               now=T0 + timedelta(hours=2))
    lifecycle.do_set_state(conn, actor=SYSTEM, group_id=gid, state="recruiting",
                           reason="入群码已发", now=T0 + timedelta(hours=3))
    feed(conn, runtime, [raw_join(f"j{i}", "g3", f"u{i}", minutes=200 + i) for i in (1, 2)])
    moves = lifecycle.advance(conn, now=T0 + timedelta(hours=4), tz=TZ)
    assert [(m["to"], m["why"]) for m in moves] == [("active", "full")]
    # another plan with a start time and a chat not seen yet: active at its start
    other = lifecycle.do_plan_group(conn, actor=SYSTEM, platform="sandbox", name="四期",
                                    starts_at=T0 + timedelta(days=1), now=T0)
    lifecycle.do_link_chat(conn, actor=SYSTEM, group_id=other["id"], chat_id="g4", now=T0)
    lifecycle.do_set_state(conn, actor=SYSTEM, group_id=other["id"], state="recruiting",
                           now=T0)
    assert lifecycle.advance(conn, now=T0 + timedelta(hours=23), tz=TZ) == []
    assert [m["why"] for m in lifecycle.advance(conn, now=T0 + timedelta(days=1, minutes=1),
                                                tz=TZ)] == ["started"]


def test_moves_by_hand_only_as_allowed_and_nothing_changes_when_refused(
        conn: Connection, runtime: Runtime) -> None:
    gid = feed(conn, runtime, [raw_join("j0", "g1", "u0")])
    for state in ("dissolving", "closed"):
        lifecycle.do_set_state(conn, actor=SYSTEM, group_id=gid, state=state,
                               reason="合并到二群", now=T0)
    before = snapshot(conn)
    with pytest.raises(Conflict) as refused:
        lifecycle.do_set_state(conn, actor=SYSTEM, group_id=gid, state="planned", now=T0)
    assert refused.value.in_language("zh-CN") == "已关闭的群不能再改变状态"
    with pytest.raises(InvalidInput) as bad:
        lifecycle.do_set_state(conn, actor=SYSTEM, group_id=gid, state="long_term", now=T0)
    assert bad.value.in_language("zh-CN") == (
        "状态：只能是 筹备中、招募中、运营中、降温中、解散中、已关闭 之一")
    assert snapshot(conn) == before
    detail = get_group_detail(conn, actor=SYSTEM, group_id=gid)
    assert detail["next_states"] == [] and detail["state_since"] is not None
    assert [r.detail["reason"] for r in conn.execute(select(audit_log.c.detail).where(
        audit_log.c.action == "group.state").order_by(audit_log.c.id))] == ["合并到二群"] * 2
