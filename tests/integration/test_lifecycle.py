"""Group lifecycle on real databases: states move by the rules (a quiet week cools an active
group and a staff task says so, two lively days bring it back, a recruiting group turns
active when full or at its start), by hand only as allowed (closed stays closed, with the
database as before), planned groups linked to their chat later, the board. The page and
API: tests/web/test_lifecycle_web.py; the commands: tests/cli/test_groups_cli.py."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, func, select

from qunyun.adapters.storage.tables import (
    audit_log,
    groups,
    outbox,
    playbook_groups,
    scheduled_jobs,
    staff_tasks,
)
from qunyun.bootstrap import Runtime
from qunyun.domain.groups import is_placeholder
from qunyun.services import lifecycle, playbooks, schedules, scripts
from qunyun.services.errors import Conflict, InvalidInput
from qunyun.services.groups import do_update_group, get_group_detail
from qunyun.services.ingest import do_ingest_event
from qunyun.services.users import SYSTEM
from tests.dbhelpers import snapshot
from tests.factories import T0, event, raw_join, raw_leave, raw_message

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
    assert plan["state"] == "planned" and is_placeholder(plan["external_id"])
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


def test_a_playbook_runs_in_a_group_when_it_turns_cooling(conn: Connection,
                                                          runtime: Runtime) -> None:
    """"When a group turns cooling, run the revival SOP": the playbook's relative steps are
    scheduled in that group from the move; a group that recovers meanwhile gets no more of
    them; a playbook meant for other groups stays out."""
    g1 = feed(conn, runtime, [raw_join("a", "g1", "u1"), raw_join("b", "g1", "u2")])
    g2 = feed(conn, runtime, [raw_join("c", "g2", "u3")])
    script = scripts.do_create_script(conn, actor=SYSTEM, values={
        "name": "激活话术", "kind": "interactive", "body": "好久不见！今晚 8 点群里抽奖，来聊聊吧"})
    revival = playbooks.do_create_playbook(conn, actor=SYSTEM, name="降温激活 SOP",
                                           on_state="cooling")
    for at in ("T+0", "T+1d 20:00", "T-1d"):
        playbooks.do_add_step(conn, actor=SYSTEM, playbook_id=revival["id"],
                              values={"at": at, "script_id": script["id"]}, tz=TZ)
    other = playbooks.do_create_playbook(conn, actor=SYSTEM, name="二群专用",
                                         on_state="cooling", group_ids=[g2])
    playbooks.do_add_step(conn, actor=SYSTEM, playbook_id=other["id"],
                          values={"at": "T+0", "script_id": script["id"]}, tz=TZ)
    # no campaign-wide jobs: a triggered playbook waits for moves
    assert conn.execute(select(scheduled_jobs.c.key).where(
        scheduled_jobs.c.kind == "playbook_step",
        scheduled_jobs.c.status == "active")).all() == []
    with pytest.raises(InvalidInput):
        playbooks.do_create_playbook(conn, actor=SYSTEM, name="x", on_state="sleepy")

    moved_at = T0 + timedelta(days=1)
    lifecycle.do_set_state(conn, actor=SYSTEM, group_id=g1, state="cooling", now=moved_at,
                           tz=TZ)
    jobs = conn.execute(select(scheduled_jobs.c.key, scheduled_jobs.c.next_run_at,
                               scheduled_jobs.c.group_id).where(
        scheduled_jobs.c.kind == "playbook_step").order_by(scheduled_jobs.c.next_run_at)).all()
    assert [(j.group_id, j.next_run_at) for j in jobs] == [
        (g1, moved_at),
        (g1, (moved_at.astimezone(TZ) + timedelta(days=1)).replace(
            hour=20, minute=0, second=0, microsecond=0).astimezone(UTC))]  # T-1d left out
    schedules.fire_due(runtime.uow, config=runtime.ingest_config, now=moved_at)
    sent = conn.execute(select(outbox.c.group_id, outbox.c.payload).where(
        outbox.c.rule.like("delivery:%"))).all()
    assert [(r.group_id, r.payload["text"]) for r in sent] == [
        (g1, "好久不见！今晚 8 点群里抽奖，来聊聊吧")]
    # the group comes back before the evening step: nothing more for it
    lifecycle.do_set_state(conn, actor=SYSTEM, group_id=g1, state="active",
                           now=moved_at + timedelta(hours=5), tz=TZ)
    schedules.fire_due(runtime.uow, config=runtime.ingest_config,
                       now=moved_at + timedelta(days=2))
    assert conn.execute(select(func.count()).select_from(outbox).where(
        outbox.c.rule.like("delivery:%"))).scalar_one() == 1
    # g2 cools: both playbooks are for it
    lifecycle.do_set_state(conn, actor=SYSTEM, group_id=g2, state="cooling",
                           now=moved_at + timedelta(days=3), tz=TZ)
    assert {k.split(":")[1] for k in conn.execute(select(scheduled_jobs.c.key).where(
        scheduled_jobs.c.group_id == g2)).scalars()} == {str(revival["id"]), str(other["id"])}


def test_a_group_whose_health_falls_cools_when_its_threshold_says_so(
        conn: Connection, runtime: Runtime) -> None:
    """Three people still talk every day in a group of sixty while fifteen leave: the
    activity rule keeps it active, the group's health threshold cools it; a small group
    where most people talk keeps its state under the same threshold."""
    joins = [raw_join(f"j{i}", "g1", f"g1u{i}", minutes=i) for i in range(60)]
    leaves = [raw_leave(f"l{i}", "g1", f"g1u{i}", minutes=DAY * (4 + i % 6) + i)
              for i in range(40, 55)]
    small = [raw_join(f"k{i}", "g2", f"g2u{i}", minutes=i) for i in range(6)]
    gid = feed(conn, runtime, joins + lively_days("g1", 3, 8, 3) + leaves)
    healthy = feed(conn, runtime, small + lively_days("g2", 3, 8, 5))
    when = T0 + timedelta(days=10, hours=23)
    assert lifecycle.advance(conn, now=when, tz=TZ) == []  # lively enough by speakers
    low = lifecycle._health(conn, gid, 7, now=when, tz=TZ)
    high = lifecycle._health(conn, healthy, 7, now=when, tz=TZ)
    assert low is not None and high is not None and low < 50 <= high
    for group in (gid, healthy):
        do_update_group(conn, actor=SYSTEM, group_id=group, changes={"cooling_health": "50"},
                        now=when)
    (move,) = lifecycle.advance(conn, now=when, tz=TZ)
    assert (move["group_id"], move["to"], move["why"]) == (gid, "cooling", "unhealthy")
    assert move["reason"] == "最近 7 天健康分低于 50"
