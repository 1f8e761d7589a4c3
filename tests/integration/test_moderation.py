"""Moderation that operators can leave on (SQLite and PostgreSQL, the real event path):
check-ins in shared words are never violations, staff are exempt, review lists queue, any
decision can be overturned with everything it caused, blacklisting acts on members already
in groups, and decisions are member events that segments and rule tags can use."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Connection, func, select

from qunyun.adapters.platforms.sandbox import SandboxAdapter
from qunyun.adapters.platforms.sandbox.send import SandboxStore
from qunyun.adapters.storage.tables import (
    audit_log,
    blacklist,
    checkins,
    groups,
    member_counts,
    member_events,
    moderation_decisions,
    outbox,
    staff_tasks,
)
from qunyun.bootstrap import Runtime
from qunyun.clock import Clock
from qunyun.services import automation, moderation, segments, tags, tasks
from qunyun.services import blacklist as blacklist_service
from qunyun.services.ingest import IngestResult, do_ingest_event
from qunyun.services.users import SYSTEM
from tests.factories import T0, event, raw_join, raw_message

CHECKIN = "今天的内容打卡了"


def ingest(conn: Connection, runtime: Runtime, raw: dict[str, object]) -> IngestResult:
    """A live event: received as it happens."""
    ev = event(raw)
    return do_ingest_event(conn, ev, config=runtime.ingest_config, received_at=ev.occurred_at)


def setting(conn: Connection, section: str, group_id: int = 0, **values: object) -> None:
    automation.do_update_settings(conn, actor=SYSTEM, section=section, values=values,
                                  group_id=group_id)


def actions_of(conn: Connection, ids: list[int]) -> list[str]:
    return [a for (a,) in conn.execute(select(outbox.c.action_type).where(
        outbox.c.id.in_(ids)).order_by(outbox.c.id))]


def decisions(conn: Connection) -> list[tuple[str, str, str]]:
    return [(r.verdict, r.action, r.status) for r in conn.execute(
        select(moderation_decisions).order_by(moderation_decisions.c.id))]


def test_thirty_students_posting_the_same_checkin_are_all_checked_in(
        conn: Connection, runtime: Runtime) -> None:
    """Seed 000 part 2: students post their daily check-in, often in the same words."""
    setting(conn, "moderation", enabled=True)
    setting(conn, "checkin", enabled=True, keywords=["打卡"])
    results = [ingest(conn, runtime, raw_message(f"c{i}", "x1", f"s{i}", CHECKIN,
                                                 minutes=i * 0.3, name=f"学员{i}"))
               for i in range(30)]
    assert {r.rules_fired for r in results} == {("checkin",)}
    assert conn.execute(select(func.count()).select_from(checkins)).scalar_one() == 30
    assert decisions(conn) == []
    # a second check-in the same day is talk; still nobody is moderated for shared words
    again = ingest(conn, runtime, raw_message("c-again", "x1", "s0", CHECKIN, minutes=10))
    assert again.rules_fired == ()
    # but one person pasting the same line over and over is flooding the group
    for i in range(3):
        spam = ingest(conn, runtime, raw_message(f"p{i}", "x1", "s1", "大家一起来打卡学英语吧！",
                                                 minutes=11 + i * 0.2))
    assert spam.rules_fired == ("moderation",)
    assert decisions(conn) == [("block", "warn", "logged")]


def test_an_ad_with_the_checkin_keyword_is_not_a_checkin(conn: Connection,
                                                         runtime: Runtime) -> None:
    setting(conn, "moderation", enabled=True)
    setting(conn, "checkin", enabled=True)
    r = ingest(conn, runtime, raw_message("a1", "x1", "ad", "打卡领红包，加V：abc12345"))
    assert r.rules_fired == ("moderation",)
    assert conn.execute(select(func.count()).select_from(checkins)).scalar_one() == 0


def test_the_same_ad_from_many_accounts_is_blocked_as_a_crowd(conn: Connection,
                                                              runtime: Runtime) -> None:
    """A text many people post is suspect only when it is ad-like on its own; then the
    crowd turns a borderline score into a block."""
    setting(conn, "moderation", enabled=True, review_threshold=0.3, block_threshold=0.99)
    ad = "本店新品特价，欢迎光临"
    first = [ingest(conn, runtime, raw_message(f"r{i}", "g1", f"bot{i}", ad, minutes=i))
             for i in range(3)]
    assert [d[0] for d in decisions(conn)] == ["review", "review", "block"]
    # the third copy is deleted (the sandbox may) and its sender warned
    assert sorted(actions_of(conn, first[2].outbox_ids)) == ["delete_message", "send_text"]
    reasons = conn.execute(select(moderation_decisions.c.reasons).order_by(
        moderation_decisions.c.id.desc())).scalars().first()
    assert "10 分钟内 3 人发了同样的广告" in reasons


def test_owner_admins_and_staff_are_not_moderated_unless_the_group_says_so(
        conn: Connection, runtime: Runtime) -> None:
    setting(conn, "moderation", enabled=True)
    promo = "今晚直播有优惠，有需要的可以私聊我"
    ingest(conn, runtime, {"type": "group", "id": "g", "at": T0.isoformat(), "chat": "g1",
                           "owner": "owner", "owner_name": "群主", "admins": ["helper"]})
    for who in ("owner", "helper"):
        r = ingest(conn, runtime, raw_message(f"o-{who}", "g1", who, promo, minutes=1))
        assert r.rules_fired == (), who
    staff = ingest(conn, runtime, {**raw_message("o-staff", "g1", "adviser", promo, minutes=2),
                                   "user_staff": True})
    assert staff.rules_fired == ()
    # nor greeted when they come in, nor given points: the group is the members'
    conn.execute(groups.update().values(settings={"welcome_template": "欢迎{name}",
                                                  "admins": []}))
    setting(conn, "points", enabled=True)
    came = ingest(conn, runtime, {**raw_join("j-staff", "g1", "adviser2", minutes=2.5),
                                  "user_staff": True})
    assert came.rules_fired == ()
    talk = ingest(conn, runtime, {**raw_message("o-staff2", "g1", "adviser2", "大家好",
                                                minutes=2.6), "user_staff": True})
    assert talk.rules_fired == ()
    # a member saying the same is moderated
    member = ingest(conn, runtime, raw_message("o-m", "g1", "stranger", promo, minutes=3))
    assert member.rules_fired == ("moderation",)
    # a group that wants its staff moderated too says so
    gid = member.group_id
    assert gid is not None
    setting(conn, "moderation", group_id=gid, exempt_staff=False)
    owner = ingest(conn, runtime, raw_message("o-again", "g1", "owner", promo, minutes=4))
    assert owner.rules_fired == ("moderation",)


def test_a_review_list_word_always_queues(conn: Connection, runtime: Runtime) -> None:
    moderation.do_save_word_list(conn, actor=SYSTEM, name="微商", severity="review",
                                 words=["微商", "代购"])
    setting(conn, "moderation", enabled=True)
    r = ingest(conn, runtime, raw_message("w1", "g1", "u1", "我是做微商的"))
    assert r.rules_fired == ("moderation",) and r.outbox_ids == []
    assert decisions(conn) == [("review", "review", "pending")]


def test_overturning_an_automatic_decision_undoes_what_it_caused(
        conn: Connection, runtime: Runtime) -> None:
    setting(conn, "moderation", enabled=True)
    ad = "兼职刷单日结300，加微信 abc_12345 详聊"
    ingest(conn, runtime, raw_join("j", "g2", "spam", minutes=-5))  # also in a second group
    steps = [ingest(conn, runtime, raw_message(f"a{i}", "g1", "spam", ad + "!" * i,
                                               minutes=i, name="广告哥")) for i in range(3)]
    member_id = steps[0].member_id
    assert [d[1] for d in decisions(conn)] == ["warn", "remove", "blacklist"]
    # the blacklist removes them from both groups, through the outbox
    assert sorted(actions_of(conn, steps[2].outbox_ids)) == [
        "delete_message", "remove_member", "remove_member"]
    assert blacklist_service.is_blacklisted(conn, member_id, T0 + timedelta(minutes=3))
    spammer_tag = tags.do_create_tag(conn, actor=SYSTEM, name="广告号", kind="rule",
                                     rule="events.ad_flagged >= 1",
                                     clock=Clock(T0, runtime.settings.tz))
    assert tags.list_tags(conn, actor=SYSTEM)[0]["members"] == 1, spammer_tag
    assert segments.count_expression(conn, actor=SYSTEM, expression="events.violation >= 3",
                                     clock=runtime.clock()) == 1
    assert segments.count_expression(conn, actor=SYSTEM, expression="events.blacklisted >= 1",
                                     clock=runtime.clock()) == 1
    # the worker has removed them from g1 already; the g2 removal still waits
    conn.execute(outbox.update().where(outbox.c.id.in_(steps[2].outbox_ids),
                                       outbox.c.group_id == steps[2].group_id)
                 .values(status="delivered"))
    ids = [r.id for r in conn.execute(select(moderation_decisions.c.id)
                                      .order_by(moderation_decisions.c.id))]
    done = moderation.do_review(conn, actor=SYSTEM, decision_id=ids[2], confirm=False,
                                capabilities=runtime.capabilities, now=T0 + timedelta(hours=1))
    assert done["status"] == "overturned" and done["undone"] == {
        "lifted": 1, "cancelled": 1, "restored": 1, "unmuted": 0}
    assert not blacklist_service.is_blacklisted(conn, member_id, T0 + timedelta(hours=2))
    restored = conn.execute(select(outbox.c.action_type, outbox.c.group_id).where(
        outbox.c.action_type == "restore_member")).one()
    assert restored.group_id == steps[2].group_id
    # the overturned one no longer counts: the next ad is a second violation, a removal
    counted = dict(conn.execute(select(member_counts.c.kind, member_counts.c.n).where(
        member_counts.c.member_id == member_id)).all())
    assert counted["violation"] == 2 and counted["violation_overturned"] == 1
    after = ingest(conn, runtime, raw_message("a9", "g1", "spam", ad + "?", minutes=90))
    assert decisions(conn)[-1][1] == "blacklist"  # warn, remove still count: third step
    assert after.rules_fired == ("moderation",)
    assert conn.execute(select(func.count()).select_from(audit_log).where(
        audit_log.c.action == "moderation.overturned")).scalar_one() == 1


def test_overturning_a_removal_on_a_platform_that_cannot_restore_asks_a_person(
        conn: Connection, runtime: Runtime, tmp_path: Path) -> None:
    runtime.adapters["sandbox"] = SandboxAdapter(SandboxStore(str(tmp_path / "w.db")),
                                                 profile="wecom")
    setting(conn, "moderation", enabled=True, escalation=["remove"])
    loan = "低息贷款当天放款，联系电话 1381234567"
    r = ingest(conn, runtime, raw_message("a1", "g1", "u1", loan + "8"))
    task_id = conn.execute(select(outbox.c.staff_task_id).where(
        outbox.c.id.in_(r.outbox_ids))).scalar_one()
    decision = conn.execute(select(moderation_decisions.c.id)).scalar_one()
    done = moderation.do_review(conn, actor=SYSTEM, decision_id=decision, confirm=False,
                                capabilities=runtime.capabilities)
    # the removal task nobody did yet is dismissed instead of undone
    assert done["undone"]["cancelled"] == 1
    assert conn.execute(select(staff_tasks.c.status).where(
        staff_tasks.c.id == task_id)).scalar_one() == "dismissed"
    # a removal a person already carried out becomes a re-invite task
    r2 = ingest(conn, runtime, raw_message("a2", "g1", "u2", loan + "9", minutes=1))
    task2 = conn.execute(select(outbox.c.staff_task_id).where(
        outbox.c.id.in_(r2.outbox_ids))).scalar_one()
    tasks.do_complete_task(conn, actor=SYSTEM, task_id=task2, outcome="已移出", now=T0)
    second = conn.execute(select(moderation_decisions.c.id).order_by(
        moderation_decisions.c.id.desc())).scalars().first()
    assert second is not None
    done = moderation.do_review(conn, actor=SYSTEM, decision_id=second, confirm=False,
                                capabilities=runtime.capabilities)
    assert done["undone"]["restored"] == 1
    title = conn.execute(select(staff_tasks.c.title).where(
        staff_tasks.c.kind == "restore_member")).scalar_one()
    assert title.startswith("重新邀请入群")


def test_blacklisting_removes_a_member_who_is_in_groups_and_mutes_the_rules(
        conn: Connection, runtime: Runtime, tmp_path: Path) -> None:
    setting(conn, "checkin", enabled=True)
    setting(conn, "points", enabled=True)
    for chat in ("g1", "g2", "g3"):
        ingest(conn, runtime, raw_join(f"j-{chat}", chat, "bad", name="捣乱的"))
    member_id = ingest(conn, runtime, raw_message("m0", "g1", "bad", "你好", minutes=1)).member_id
    assert member_id is not None
    runtime.adapters["sandbox"] = SandboxAdapter(SandboxStore(str(tmp_path / "w.db")),
                                                 profile="wecom")
    entry = blacklist_service.do_blacklist(conn, actor=SYSTEM, member_id=member_id,
                                           reason="骚扰群友", capabilities=runtime.capabilities)
    assert entry.removals == 3
    # WeCom cannot remove: each removal is a task for a person
    assert conn.execute(select(func.count()).select_from(staff_tasks).where(
        staff_tasks.c.kind == "remove_member")).scalar_one() == 3
    # until someone does it, their messages get nothing (no check-in, no points) and ask
    # for the same removal, which is stored once
    later = [ingest(conn, runtime, raw_message(f"m{i}", "g1", "bad", "打卡", minutes=10 + i))
             for i in range(1, 4)]
    assert {r.rules_fired for r in later} == {("blacklist",)}
    assert conn.execute(select(func.count()).select_from(checkins)).scalar_one() == 0
    assert conn.execute(select(func.count()).select_from(outbox).where(
        outbox.c.action_type == "remove_member")).scalar_one() == 3
    kinds = [k for (k,) in conn.execute(select(member_events.c.kind).where(
        member_events.c.member_id == member_id).order_by(member_events.c.id))]
    assert "blacklisted" in kinds
    blacklist_service.do_lift(conn, actor=SYSTEM, member_id=member_id, reason="误会")
    assert conn.execute(select(blacklist.c.lifted_by).where(
        blacklist.c.id == entry.id)).scalar_one() == SYSTEM.label
    assert "unblacklisted" in [k for (k,) in conn.execute(select(member_events.c.kind).where(
        member_events.c.member_id == member_id))]


def test_a_queue_reviewed_the_next_morning_still_removes_but_does_not_warn(
        conn: Connection, runtime: Runtime) -> None:
    """Operators clear the review queue when they get to it: a removal they confirm the next
    morning happens then; a warning about yesterday's message would read as nonsense in the
    group, so that one is only counted."""
    setting(conn, "moderation", enabled=True, review_threshold=0.3, block_threshold=0.99)
    ingest(conn, runtime, raw_message("a1", "g1", "u1", "本店新品特价，欢迎光临"))
    ingest(conn, runtime, raw_message("a2", "g1", "u1", "本店新品特价，欢迎光临惠顾", minutes=5))
    first, second = (d["id"] for d in sorted(
        moderation.list_decisions(conn, actor=SYSTEM, status="pending"),
        key=lambda d: d["id"]))
    morning = T0 + timedelta(hours=16)
    warned = moderation.do_review(conn, actor=SYSTEM, decision_id=first, confirm=True,
                                  capabilities=runtime.capabilities, now=morning)
    removed = moderation.do_review(conn, actor=SYSTEM, decision_id=second, confirm=True,
                                   capabilities=runtime.capabilities, now=morning)
    assert (warned["action"], removed["action"]) == ("warn", "remove")
    sent = dict(conn.execute(select(outbox.c.idempotency_key, outbox.c.action_type).where(
        outbox.c.idempotency_key.like("review:%"))).all())
    assert sorted(sent.values()) == ["remove_member"]
    assert all(k.startswith(f"review:{second}:") for k in sent)


def test_where_the_platform_cannot_delete_the_ad_only_the_removal_is_a_task(
        conn: Connection, runtime: Runtime) -> None:
    """WeCom cannot delete a member's message: the deletion is left out rather than handed
    to a person beside the removal's task."""
    from qunyun.adapters.platforms.sandbox.adapter import PROFILES
    from qunyun.domain.actions import DeleteMessage, RemoveMember
    from qunyun.services import outbox as outbox_service

    gid = ingest(conn, runtime, raw_join("j", "g1", "spam")).group_id
    member = ingest(conn, runtime, raw_join("j2", "g1", "spam2")).member_id
    assert gid is not None and member is not None
    ids = outbox_service.enqueue(
        conn, platform="sandbox", capabilities=PROFILES["wecom"], key_prefix="t", now=T0,
        actions=[("moderation", DeleteMessage(group_id=gid, member_id=member,
                                              message_id="m1", reason="广告")),
                 ("moderation", RemoveMember(group_id=gid, member_id=member, reason="广告"))])
    assert [(r.action_type, r.status) for r in conn.execute(
        select(outbox.c.action_type, outbox.c.status).where(outbox.c.id.in_(ids)))] == [
        ("remove_member", "staff_task")]
