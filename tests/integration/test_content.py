"""Scripts, playbooks and broadcasts on the real event path (SQLite and PostgreSQL): the seed
000 launch day in six groups, exactly-once firing, quiet hours, frequency caps, WeCom-style
confirmation tasks, and bad input refused with nothing written."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, func, select

from qunyun import sample_playbooks
from qunyun.adapters.platforms.sandbox import SandboxAdapter
from qunyun.adapters.platforms.sandbox.send import SandboxStore
from qunyun.adapters.storage.tables import (
    deliveries,
    outbox,
    push_log,
    scheduled_jobs,
    staff_tasks,
)
from qunyun.bootstrap import Runtime
from qunyun.clock import Clock, utcnow
from qunyun.domain.events import ScheduleFired
from qunyun.services import (
    automation,
    broadcasts,
    playbooks,
    pushes,
    schedules,
    scripts,
    tasks,
    timeline,
)
from qunyun.services import groups as groups_service
from qunyun.services.errors import Conflict, InvalidInput
from qunyun.services.ingest import do_ingest_event
from qunyun.services.users import SYSTEM
from tests.dbhelpers import snapshot
from tests.factories import event, raw_join, raw_message

TZ = ZoneInfo("Asia/Shanghai")


def make_groups(conn: Connection, runtime: Runtime, n: int, *, prefix: str = "g") -> list[int]:
    ids = []
    for i in range(n):
        gid = do_ingest_event(conn, event(raw_join(f"{prefix}j{i}", f"{prefix}{i}", f"u{i}")),
                              config=runtime.ingest_config).group_id
        assert gid is not None
        groups_service.do_update_group(conn, actor=SYSTEM, group_id=gid,
                                       changes={"name": f"英语{i + 1}群"}, now=utcnow())
        ids.append(gid)
    return ids


def local(day: datetime, hh: int, mm: int = 0) -> datetime:
    return day.astimezone(TZ).replace(hour=hh, minute=mm, second=0, microsecond=0)


def launch_start() -> datetime:
    """20:00 local three days from now (steps are computed against the real clock)."""
    return local(utcnow() + timedelta(days=3), 20)


def texts_by_group(conn: Connection, rule_like: str = "delivery:%") -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for gid, payload in conn.execute(select(outbox.c.group_id, outbox.c.payload)
                                     .where(outbox.c.rule.like(rule_like))
                                     .order_by(outbox.c.next_attempt_at, outbox.c.id)):
        out.setdefault(gid, []).append(payload["text"])
    return out


def test_seed_000_launch_day_runs_the_same_scripts_in_six_groups_once(
        conn: Connection, runtime: Runtime) -> None:
    gids = make_groups(conn, runtime, 6)
    start = launch_start()
    ids = sample_playbooks.install(conn, actor=SYSTEM, group_ids=gids,
                                       campaign_start=start, tz=TZ)
    pid = ids[sample_playbooks.LAUNCH]
    pb = playbooks.get_playbook(conn, actor=SYSTEM, playbook_id=pid)
    assert len(pb["groups"]) == 6 and len(pb["steps"]) == 8
    on_the_day = [s for s in pb["steps"] if s["next_run_at"] is not None
                  and s["next_run_at"].astimezone(TZ).date() == start.date()]
    notices = [s for s in on_the_day if s["name"].startswith("当天通知")]
    assert len(notices) == 3
    warm = next(s for s in pb["steps"] if s["at"] == "T-1h")
    assert warm["next_run_at"] == start - timedelta(hours=1)

    # the worker wakes at every step time (twice each: a second look fires nothing)
    times = sorted({s["next_run_at"] for s in pb["steps"]})
    for t in times:
        assert schedules.fire_due(runtime.uow, config=runtime.ingest_config, now=t) >= 1
        assert schedules.fire_due(runtime.uow, config=runtime.ingest_config, now=t) == 0
    by_group = texts_by_group(conn)
    assert set(by_group) == set(gids)
    first = by_group[gids[0]]
    assert len(first) == 8
    for gid, texts in by_group.items():  # same scripts, same order, the group's own name
        name = groups_service.get_group_detail(conn, actor=SYSTEM, group_id=gid)["name"]
        assert texts == [t.replace("英语1群", name) for t in first]
    assert "「21天英语打卡」今晚开始！英语1群的小伙伴们准备好了吗？" in first[2]
    assert all("{" not in t for t in first)
    assert conn.execute(select(func.count()).select_from(deliveries)).scalar_one() == 8
    jobs = conn.execute(select(scheduled_jobs.c.status).where(
        scheduled_jobs.c.kind == "playbook_step")).scalars().all()
    assert set(jobs) == {"done"}


def test_launch_notices_keep_their_slots_when_the_daily_sop_runs_in_the_same_groups(
        conn: Connection, runtime: Runtime) -> None:
    """Seed 000's launch day: six launch sends and four daily-SOP sends per group against a
    cap of 6 a day. The worker fires every step at its time; the launch notices all go out
    on time and the routine steps give way (before, the start notice was queued to the next
    morning while every preview said "send")."""
    gids = make_groups(conn, runtime, 2)
    start = launch_start()
    sample_playbooks.install(conn, actor=SYSTEM, group_ids=gids, campaign_start=start,
                                 tz=TZ, daily_group_ids=gids)
    clock = Clock(utcnow(), TZ)
    day = start.astimezone(TZ).date()
    shown = timeline.preview_timeline(conn, actor=SYSTEM, group_id=gids[0], start=day, days=1,
                                      clock=clock)
    assert [(r["step"], r["status"]) for r in shown["rows"] if r["status"] == "send"] == [
        ("当天通知 1", "send"), ("当天通知 2", "send"), ("当天通知 3", "send"),
        ("开始前 1 小时暖场", "send"), ("开始", "send"), ("开始后互动", "send")]
    dropped = {r["name"] for r in shown["rows"] if r["status"] == "dropped"}
    assert dropped == {sample_playbooks.DAILY}
    # the worker wakes at every step time from now to the end of launch day
    end = start + timedelta(hours=4)
    times = sorted({local(start - timedelta(days=d), hh, mm) for d in range(4)
                    for hh, mm in ((8, 0), (9, 0), (12, 0), (14, 0), (18, 30), (19, 0),
                                   (20, 0), (20, 30), (21, 30))})
    for t in times:
        if utcnow() < t <= end:
            schedules.fire_due(runtime.uow, config=runtime.ingest_config, now=t)
    sent = conn.execute(select(deliveries.c.id, deliveries.c.due_at, deliveries.c.planned,
                               deliveries.c.dropped, deliveries.c.queued).where(
        deliveries.c.due_at >= local(start, 0), deliveries.c.due_at < local(start, 23, 59))
        .order_by(deliveries.c.due_at)).all()
    assert sum(d.planned for d in sent) == 12 and sum(d.queued for d in sent) == 0
    assert sum(d.dropped for d in sent) == 8  # the daily SOP's four steps in both groups
    for d in sent:  # every launch-day send is due when its step fired, none queued
        for at in conn.execute(select(outbox.c.next_attempt_at).where(
                outbox.c.rule == f"delivery:{d.id}")).scalars():
            assert at == d.due_at


def test_warm_up_only_in_quiet_groups_and_a_replayed_occurrence_is_a_no_op(
        conn: Connection, runtime: Runtime) -> None:
    gids = make_groups(conn, runtime, 2)
    start = launch_start()
    pid = sample_playbooks.install(conn, actor=SYSTEM, group_ids=gids,
                                       campaign_start=start, tz=TZ)[sample_playbooks.LAUNCH]
    warm_at = start - timedelta(hours=1)
    for i in range(30):  # group 0 is lively in the hour before the warm-up
        do_ingest_event(conn, event({**raw_message(f"m{i}", "g0", "u0", "大家好"),
                                     "at": (warm_at - timedelta(minutes=50 - i)).isoformat()}),
                        config=runtime.ingest_config)
    step = next(s for s in playbooks.get_playbook(conn, actor=SYSTEM, playbook_id=pid)["steps"]
                if s["at"] == "T-1h")
    fired = ScheduleFired(platform="system", external_event_id=f"job:x@{warm_at.isoformat()}",
                          occurred_at=warm_at, job_key="x", job_kind="playbook_step",
                          payload={"playbook_id": pid, "step_id": step["id"]})
    first = do_ingest_event(conn, fired, config=runtime.ingest_config, received_at=warm_at)
    assert len(first.outbox_ids) == 1
    row = conn.execute(select(outbox.c.group_id).where(outbox.c.id == first.outbox_ids[0])
                       ).scalar_one()
    assert row == gids[1]
    log = conn.execute(select(deliveries)).mappings().one()
    assert log["skipped"] == 1 and "无需暖场" in log["detail"]["skipped"][0]["reason"]
    again = do_ingest_event(conn, fired, config=runtime.ingest_config, received_at=warm_at)
    assert again.duplicate and again.outbox_ids == []
    assert conn.execute(select(func.count()).select_from(deliveries)).scalar_one() == 1


def test_pause_skip_and_shift_move_the_jobs(conn: Connection, runtime: Runtime) -> None:
    gids = make_groups(conn, runtime, 1)
    start = launch_start()
    pid = sample_playbooks.install(conn, actor=SYSTEM, group_ids=gids,
                                       campaign_start=start, tz=TZ)[sample_playbooks.LAUNCH]

    def next_runs() -> dict[str, datetime | None]:
        return {s["at"]: s["next_run_at"] for s in
                playbooks.get_playbook(conn, actor=SYSTEM, playbook_id=pid)["steps"]}

    before = next_runs()
    moved = playbooks.do_shift_campaign(conn, actor=SYSTEM, playbook_id=pid,
                                        by=timedelta(days=1, hours=1), tz=TZ)
    assert moved["missed"] == []
    after = next_runs()
    assert after["T+0"] == before["T+0"] + timedelta(days=1, hours=1)  # type: ignore[operator]
    # a step with a time of day keeps it, on the shifted day
    assert after["T 09:00"] == before["T 09:00"] + timedelta(days=1)  # type: ignore[operator]
    playbooks.do_update_playbook(conn, actor=SYSTEM, playbook_id=pid,
                                 changes={"status": "paused"}, tz=TZ)
    assert all(v is None for v in next_runs().values())
    assert schedules.fire_due(runtime.uow, config=runtime.ingest_config,
                              now=start + timedelta(days=5)) == 0
    playbooks.do_update_playbook(conn, actor=SYSTEM, playbook_id=pid,
                                 changes={"status": "active"}, tz=TZ)
    step = next(s for s in playbooks.get_playbook(conn, actor=SYSTEM, playbook_id=pid)["steps"]
                if s["at"] == "T+30m")
    playbooks.do_skip_step(conn, actor=SYSTEM, playbook_id=pid, step_id=step["id"], tz=TZ)
    assert next_runs()["T+30m"] is None and next_runs()["T+0"] is not None
    # moving the start into the past: the steps whose time passed are reported, not sent late
    shifted = playbooks.do_shift_campaign(conn, actor=SYSTEM, playbook_id=pid,
                                          to=utcnow() + timedelta(hours=12), tz=TZ)
    assert "提前两天预热" in shifted["missed"] and "提前一天预告" in shifted["missed"]


def test_daily_step_recurs_coalesces_downtime_and_skip_once(conn: Connection,
                                                            runtime: Runtime) -> None:
    gids = make_groups(conn, runtime, 1)
    script = scripts.do_create_script(conn, actor=SYSTEM, values={
        "name": "早报", "kind": "announcement", "body": "{date} 早报"})
    pb = playbooks.do_create_playbook(conn, actor=SYSTEM, name="SOP", group_ids=gids)
    step = playbooks.do_add_step(conn, actor=SYSTEM, playbook_id=pb["id"], tz=TZ,
                                 values={"at": "daily 08:00", "script_id": script["id"]})
    first = step["next_run_at"]
    assert first.astimezone(TZ).hour == 8
    skipped = playbooks.do_skip_step(conn, actor=SYSTEM, playbook_id=pb["id"],
                                     step_id=step["id"], once=True, tz=TZ)
    assert skipped["next_run_at"] == first + timedelta(days=1)
    # down for three days: one late morning report, then back to 08:00
    now = first + timedelta(days=3, hours=2)
    assert schedules.fire_due(runtime.uow, config=runtime.ingest_config, now=now) == 1
    job = conn.execute(select(scheduled_jobs).where(scheduled_jobs.c.kind == "playbook_step")
                       ).mappings().one()
    assert job["next_run_at"] == first + timedelta(days=4)
    assert job["status"] == "active"
    texts = [p["text"] for p in conn.execute(select(outbox.c.payload)
                                             .where(outbox.c.rule.like("delivery:%"))).scalars()]
    assert len(texts) == 1 and texts[0].endswith("早报")


def test_quiet_hours_defer_and_caps_queue_or_drop(conn: Connection, runtime: Runtime) -> None:
    gids = make_groups(conn, runtime, 2)
    automation.do_update_settings(conn, actor=SYSTEM, section="broadcast", values={
        "caps": [{"scope": "group", "period": "day", "limit": 2}]})
    late = local(utcnow() + timedelta(days=2), 23)
    for i in range(3):
        broadcasts.do_create_broadcast(conn, actor=SYSTEM, name=f"通知{i}",
                                       target={"groups": gids}, text=f"第{i}条通知",
                                       send_at=late + timedelta(minutes=i))
    assert schedules.fire_due(runtime.uow, config=runtime.ingest_config,
                              now=late + timedelta(minutes=5)) == 3
    rows = conn.execute(select(outbox.c.group_id, outbox.c.next_attempt_at, outbox.c.payload)
                        .order_by(outbox.c.id)).all()
    assert len(rows) == 6
    next_morning = local(late + timedelta(days=1), 8)
    # 23:00 is quiet: the first two go out at 08:00, the third is over the cap of 2 a day
    # on that day and waits for the day after
    by_text = {(r.group_id, r.payload["text"]): r.next_attempt_at for r in rows}
    assert by_text[(gids[0], "第0条通知")] == next_morning
    assert by_text[(gids[0], "第1条通知")] == next_morning
    assert by_text[(gids[0], "第2条通知")] == next_morning + timedelta(days=1)
    log = {r["text"]: r for r in conn.execute(select(deliveries)).mappings()}
    assert log["第0条通知"]["deferred"] == 2 and log["第2条通知"]["queued"] == 2
    # with the drop policy an over-cap push is reported and not stored
    automation.do_update_settings(conn, actor=SYSTEM, section="broadcast",
                                  values={"over_cap": "drop", "quiet_hours": ""})
    noon = local(next_morning, 12)  # the day that already holds two pushes per group
    broadcasts.do_create_broadcast(conn, actor=SYSTEM, name="午间", target={"groups": gids},
                                   text="午间通知", send_at=noon)
    schedules.fire_due(runtime.uow, config=runtime.ingest_config, now=noon)
    dropped = conn.execute(select(deliveries).where(deliveries.c.text == "午间通知")
                           ).mappings().one()
    assert dropped["dropped"] == 2 and dropped["planned"] == 0
    assert "超出频次上限" in dropped["detail"]["dropped"][0]["reason"]
    assert conn.execute(select(func.count()).select_from(push_log)).scalar_one() == 6


def test_segment_broadcast_reaches_members_privately_with_member_caps(
        conn: Connection, runtime: Runtime) -> None:
    make_groups(conn, runtime, 3)
    automation.do_update_settings(conn, actor=SYSTEM, section="broadcast", values={
        "quiet_hours": "", "caps": [{"scope": "member", "period": "week", "limit": 1}]})
    clock = Clock(utcnow(), TZ)
    preview = broadcasts.preview_broadcast(conn, actor=SYSTEM, target={"segment": "joined >= -30d"},
                                           text="{name} 你好，本周福利已上线", clock=clock)
    assert preview["recipients"] == 3 and preview["counts"]["send"] == 3
    assert preview["sample"][0]["text"].endswith("你好，本周福利已上线")
    assert "{name}" not in preview["sample"][0]["text"]
    before = snapshot(conn)
    b = broadcasts.do_create_broadcast(conn, actor=SYSTEM, name="福利",
                                       target={"segment": "joined >= -30d"},
                                       text="{name} 你好，本周福利已上线")
    schedules.fire_due(runtime.uow, config=runtime.ingest_config)
    sent = conn.execute(select(outbox.c.action_type, outbox.c.member_id)
                        .where(outbox.c.rule.like("delivery:%"))).all()
    assert len(sent) == 3 and {a for a, _m in sent} == {"send_private"}
    assert broadcasts.get_broadcast(conn, actor=SYSTEM, broadcast_id=b["id"])["status"] == "sent"
    again = broadcasts.preview_broadcast(conn, actor=SYSTEM, target={"segment": "joined >= -30d"},
                                         text="再来一条", clock=clock)
    assert again["counts"]["queued"] == 3 and again["warnings"]
    assert snapshot(conn) != before


def test_wecom_like_platform_gets_one_confirmation_task_that_settles_the_rows(
        conn: Connection, runtime: Runtime, tmp_path: Path) -> None:
    runtime.adapters["sandbox"] = SandboxAdapter(SandboxStore(str(tmp_path / "w.db")),
                                                 profile="wecom")
    gids = make_groups(conn, runtime, 4)
    b = broadcasts.do_create_broadcast(conn, actor=SYSTEM, name="群发", target={"all": True},
                                       text="本周直播预告", attachments=[
                                           {"type": "link", "url": "https://example.com/live",
                                            "title": "直播间"}])
    schedules.fire_due(runtime.uow, config=runtime.ingest_config)
    delivery = broadcasts.get_broadcast(conn, actor=SYSTEM, broadcast_id=b["id"])["deliveries"][0]
    assert delivery["outbox"] == {"staff_task": 4}
    confirm = conn.execute(select(staff_tasks).where(
        staff_tasks.c.kind == pushes.CONFIRM_TASK)).mappings().all()
    assert len(confirm) == 1  # one task for the whole send, not one per group
    task = confirm[0]
    assert task["title"] == f"确认群发：本周直播预告 → {len(gids)} 个群"
    # the reason in words a person reads; the codes stay in the task's data
    assert task["reason"] == "平台不能自动不经确认群发、在群里发消息，请手动完成"
    assert delivery["confirmation"][0]["status"] == "open"
    # overdue confirmations get reminders, not more often than asked
    later = task["due_at"] + timedelta(hours=1)
    assert pushes.remind_confirmations(conn, now=later) == 1
    assert pushes.remind_confirmations(conn, now=later + timedelta(minutes=5)) == 0
    tasks.do_complete_task(conn, actor=SYSTEM, task_id=task["id"], outcome="已在企业微信确认",
                           now=later)
    statuses = set(conn.execute(select(outbox.c.status).where(
        outbox.c.staff_task_id == task["id"])).scalars())
    assert statuses == {"delivered"}
    after = broadcasts.get_broadcast(conn, actor=SYSTEM, broadcast_id=b["id"])["deliveries"][0]
    assert after["outbox"] == {"delivered": 4}
    assert after["confirmation"][0]["reminders"] == 1


def test_scripts_are_validated_and_versioned(conn: Connection) -> None:
    before = snapshot(conn)
    for values, message in [
        ({"name": "x", "body": "你好 {nmae}"}, "unknown variable {nmae}"),
        ({"name": "x", "body": "你好 {name"}, "body:"),
        ({"name": "x", "body": "hi", "kind": "poster"}, "kind:"),
        ({"name": "x", "body": "hi", "attachments": [{"type": "image", "url": "ftp://a"}]},
         "attachments[0].url"),
        ({"name": "", "body": "hi"}, "name:"),
    ]:
        with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("{", r"\{")):
            scripts.do_create_script(conn, actor=SYSTEM, values=values)
    assert snapshot(conn) == before
    s = scripts.do_create_script(conn, actor=SYSTEM, values={
        "name": "报名提醒", "kind": "pitch", "body": "{name}，{course}报名截止{deadline}",
        "variables": ["course"]})
    with pytest.raises(Conflict):
        scripts.do_create_script(conn, actor=SYSTEM, values={"name": "报名提醒", "body": "x"})
    s2 = scripts.do_update_script(conn, actor=SYSTEM, script_id=s["id"],
                                  values={"body": "{name}，{course}今晚截止"}, note="改截止")
    assert s2["version"] == 2
    same = scripts.do_update_script(conn, actor=SYSTEM, script_id=s["id"],
                                    values={"body": "{name}，{course}今晚截止"})
    assert same["version"] == 2
    history = scripts.script_history(conn, actor=SYSTEM, script_id=s["id"])
    assert [h["version"] for h in history] == [2, 1] and history[0]["note"] == "改截止"
    preview = scripts.preview_script(conn, actor=SYSTEM, script_id=s["id"],
                                     values={"course": "英语课"})
    assert preview["text"] == "大家，英语课今晚截止" and preview["missing"] == []
    assert scripts.preview_script(conn, actor=SYSTEM, script_id=s["id"])["missing"] == ["course"]


def test_bad_steps_targets_and_broadcasts_are_refused_with_nothing_written(
        conn: Connection, runtime: Runtime) -> None:
    gids = make_groups(conn, runtime, 1)
    s = scripts.do_create_script(conn, actor=SYSTEM, values={"name": "a", "body": "hi"})
    pb = playbooks.do_create_playbook(conn, actor=SYSTEM, name="P", group_ids=gids)
    before = snapshot(conn)
    cases = [
        (lambda: playbooks.do_add_step(conn, actor=SYSTEM, playbook_id=pb["id"], tz=TZ,
                                       values={"at": "tomorrow", "script_id": s["id"]}),
         "not a step time"),
        (lambda: playbooks.do_add_step(conn, actor=SYSTEM, playbook_id=pb["id"], tz=TZ,
                                       values={"at": "daily 08:00", "script_id": 999999}),
         "script 999999"),
        (lambda: playbooks.do_add_step(conn, actor=SYSTEM, playbook_id=pb["id"], tz=TZ,
                                       values={"at": "daily 08:00", "script_id": s["id"],
                                               "target": {"groups": [999999]}}),
         "no group 999999"),
        (lambda: broadcasts.do_create_broadcast(conn, actor=SYSTEM, name="b",
                                                target={"segment": "messages >>> 3"},
                                                text="x"), "segment"),
        (lambda: broadcasts.do_create_broadcast(conn, actor=SYSTEM, name="b",
                                                target={"groups": gids, "all": True},
                                                text="x"), "exactly one"),
        (lambda: broadcasts.do_create_broadcast(conn, actor=SYSTEM, name="b",
                                                target={"groups": gids}, text="x",
                                                send_at=utcnow() - timedelta(hours=1)),
         "passed"),
        (lambda: automation.do_update_settings(conn, actor=SYSTEM, group_id=gids[0],
                                               section="broadcast",
                                               values={"quiet_hours": ""}), "team setting"),
        (lambda: automation.do_update_settings(conn, actor=SYSTEM, section="broadcast", values={
            "caps": [{"scope": "group", "period": "week", "limit": "days"}]}), "month"),
    ]
    for call, message in cases:
        with pytest.raises(Exception, match=message) as info:
            call()
        assert info.type.__name__ in {"InvalidInput", "NotFound"}
    assert snapshot(conn) == before


def test_playbook_preview_applies_quiet_hours_and_caps_and_stores_nothing(
        conn: Connection, runtime: Runtime) -> None:
    gids = make_groups(conn, runtime, 2)
    start = launch_start()
    ids = sample_playbooks.install(conn, actor=SYSTEM, group_ids=gids, campaign_start=start,
                                       tz=TZ, daily_group_ids=gids)
    before = snapshot(conn)
    clock = Clock(utcnow(), TZ)
    launch = playbooks.preview_playbook(
        conn, actor=SYSTEM, playbook_id=ids[sample_playbooks.LAUNCH],
        start=(start - timedelta(days=2)).astimezone(TZ).date(), days=3, clock=clock)
    assert launch["counts"] == {"send": 16}
    warm = [r for r in launch["rows"] if r["step"] == "开始前 1 小时暖场"]
    assert len(warm) == 2 and all(r["condition"] == "仅当最近一小时消息少于 30 条" for r in warm)
    # the daily SOP shares the groups' caps (6 a day) with the launch: on launch day its
    # four steps give way to the six launch notices and are skipped, not pushed to the next
    # morning; the day after, they all go out
    daily = playbooks.preview_playbook(conn, actor=SYSTEM, playbook_id=ids[sample_playbooks.DAILY],
                                       start=start.astimezone(TZ).date(), days=2, clock=clock)
    assert daily["counts"] == {"send": 8, "dropped": 8}
    launch_day = start.astimezone(TZ).date().isoformat()
    assert {r["status"] for r in daily["rows"] if r["due"].startswith(launch_day)} == {"dropped"}
    reasons = {r["reason"] for r in daily["rows"] if r["status"] == "dropped"}
    assert "超出频次上限：每群每天最多 6 次，名额留给活动推送，本次不发" in reasons
    assert all(r.endswith("本次不发") for r in reasons)
    assert snapshot(conn) == before
