"""Automation on the real event path (SQLite and PostgreSQL): welcome batching, FAQ replies
with cool-downs, moderation with escalation and the review queue, check-ins with streaks,
points, refunds and reproducible draws; staff tasks where the platform cannot act."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, func, select

from qunyun.adapters.platforms.sandbox import SandboxAdapter
from qunyun.adapters.platforms.sandbox.send import SandboxStore
from qunyun.adapters.storage.tables import (
    blacklist,
    checkins,
    faqs,
    member_counts,
    moderation_decisions,
    outbox,
    points_ledger,
    staff_tasks,
)
from qunyun.bootstrap import Runtime
from qunyun.clock import Clock
from qunyun.services import automation, draws, moderation
from qunyun.services import checkins as checkins_service
from qunyun.services import faqs as faqs_service
from qunyun.services import groups as groups_service
from qunyun.services.errors import Conflict, InvalidInput
from qunyun.services.ingest import IngestResult, do_ingest_event
from qunyun.services.users import SYSTEM
from tests.dbhelpers import snapshot
from tests.factories import T0, event, raw_join, raw_leave, raw_message

TZ = ZoneInfo("Asia/Shanghai")


def ingest(conn: Connection, runtime: Runtime, raw: dict[str, object]) -> IngestResult:
    ev = event(raw)
    return do_ingest_event(conn, ev, config=runtime.ingest_config, received_at=ev.occurred_at)


def setting(conn: Connection, section: str, **values: object) -> None:
    automation.do_update_settings(conn, actor=SYSTEM, section=section, values=values)


def sent_texts(conn: Connection, ids: list[int]) -> list[str]:
    return [r.payload["text"] for r in conn.execute(
        select(outbox.c.payload).where(outbox.c.id.in_(ids), outbox.c.action_type == "send_text"))]


def test_welcome_batches_joins_in_a_window_and_never_greets_twice(conn: Connection,
                                                                  runtime: Runtime) -> None:
    first = ingest(conn, runtime, raw_join("j0", "g1", "u0", name="群主"))
    assert first.group_id is not None
    groups_service.do_update_group(conn, actor=SYSTEM, group_id=first.group_id, changes={
        "welcome_template": "欢迎 @{name} 加入{group}！{campaign}"}, now=T0)
    automation.do_update_settings(conn, actor=SYSTEM, group_id=first.group_id,
                                  section="welcome",
                                  values={"batch_seconds": 120, "campaign_message": "今晚8点团购"})
    a = do_ingest_event(conn, event(raw_join("j1", "g1", "u1", name="张三")),
                        config=runtime.ingest_config, received_at=T0)
    b = do_ingest_event(conn, event(raw_join("j2", "g1", "u2", name="李四", minutes=1)),
                        config=runtime.ingest_config, received_at=T0 + timedelta(minutes=1))
    assert a.outbox_ids == b.outbox_ids  # merged into the waiting welcome
    row = conn.execute(select(outbox).where(outbox.c.id == a.outbox_ids[0])).mappings().one()
    assert row["payload"]["text"] == "欢迎 @张三 @李四 加入群g1！今晚8点团购"
    assert row["payload"]["mention_member_ids"] == [a.member_id, b.member_id]
    assert row["next_attempt_at"] == T0 + timedelta(seconds=120)
    # after the window a newcomer starts a new welcome; a rejoin gets none
    c = do_ingest_event(conn, event(raw_join("j3", "g1", "u3", name="王五", minutes=5)),
                        config=runtime.ingest_config, received_at=T0 + timedelta(minutes=5))
    assert c.outbox_ids and c.outbox_ids != a.outbox_ids
    again = do_ingest_event(conn, event(raw_join("j4", "g1", "u1", name="张三", minutes=6)),
                            config=runtime.ingest_config, received_at=T0 + timedelta(minutes=6))
    assert "welcome" not in again.rules_fired
    ingest(conn, runtime, raw_leave("l3", "g1", "u3", minutes=7))
    back = ingest(conn, runtime, raw_join("j5", "g1", "u3", name="王五", minutes=8))
    assert "welcome" not in back.rules_fired


def test_faq_answers_confidently_keeps_quiet_when_unsure_and_cools_down(
        conn: Connection, runtime: Runtime) -> None:
    faq_id = faqs_service.do_create_faq(
        conn, actor=SYSTEM, questions=["定金可以退吗", "交了定金还能退吗"],
        answer="定金活动结束前可全额退。", cooldown_seconds=600)
    setting(conn, "faq", enabled=True)
    r1 = ingest(conn, runtime, raw_message("m1", "g1", "u1", "请问定金可以退吗？"))
    assert "faq" in r1.rules_fired
    assert sent_texts(conn, r1.outbox_ids) == ["定金活动结束前可全额退。"]
    # same question again within the cool-down: silent
    r2 = ingest(conn, runtime, raw_message("m2", "g1", "u2", "定金可以退吗", minutes=2))
    assert "faq" not in r2.rules_fired
    # after the cool-down it answers again
    r3 = ingest(conn, runtime, raw_message("m3", "g1", "u2", "定金可以退吗", minutes=11))
    assert "faq" in r3.rules_fired
    # an unrelated question is not answered
    r4 = ingest(conn, runtime, raw_message("m4", "g1", "u3", "沙发什么时候发货？", minutes=30))
    assert "faq" not in r4.rules_fired
    assert conn.execute(select(faqs.c.hits).where(faqs.c.id == faq_id)).scalar_one() == 2
    # with hand-off switched on, the unanswered question becomes a staff task
    setting(conn, "faq", handoff_unanswered=True)
    r5 = ingest(conn, runtime, raw_message("m5", "g1", "u3", "沙发什么时候发货？", minutes=31))
    task = conn.execute(select(staff_tasks.c.title).join(
        outbox, outbox.c.staff_task_id == staff_tasks.c.id).where(
        outbox.c.id.in_(r5.outbox_ids))).scalar_one()
    assert "沙发什么时候发货" in task


def test_moderation_escalates_warn_remove_blacklist_and_logs_reasons(
        conn: Connection, runtime: Runtime) -> None:
    setting(conn, "moderation", enabled=True)
    ad = "兼职刷单日结300，加微信 abc_12345 详聊"
    r1 = ingest(conn, runtime, raw_message("a1", "g1", "spam", ad, name="spam"))
    assert r1.rules_fired == ("moderation",)
    # the group reads what to stop doing, in plain words; scores and lists stay in the log
    assert sent_texts(conn, r1.outbox_ids)[0] == ("@spam 请不要在群里发广告、留联系方式，"
                                                  "再次违规将被移出群聊。")
    r2 = ingest(conn, runtime, raw_message("a2", "g1", "spam", ad + "!", minutes=1, name="spam"))
    # the ad is deleted where the platform allows it (the sandbox here does), then the step
    assert [a for (a,) in conn.execute(select(outbox.c.action_type).where(
        outbox.c.id.in_(r2.outbox_ids)).order_by(outbox.c.id))] == ["delete_message",
                                                                    "remove_member"]
    r3 = ingest(conn, runtime, raw_message("a3", "g1", "spam", ad + "!!", minutes=2, name="spam"))
    assert "remove_member" in [a for (a,) in conn.execute(select(outbox.c.action_type).where(
        outbox.c.id.in_(r3.outbox_ids)))]
    assert conn.execute(select(blacklist.c.reason).where(
        blacklist.c.member_id == r3.member_id)).scalar_one().startswith("自动拉黑")
    steps = [r.action for r in conn.execute(select(moderation_decisions.c.action)
                                            .order_by(moderation_decisions.c.id))]
    assert steps == ["warn", "remove", "blacklist"]
    reasons = conn.execute(select(moderation_decisions.c.reasons)).scalars().first()
    assert "含微信/QQ号" in reasons and "联系方式 + 诱导用语" in reasons
    # ordinary talk passes, FAQ and everything else untouched
    ok = ingest(conn, runtime, raw_message("ok1", "g1", "u1", "请问团购价格多少？", minutes=3))
    assert "moderation" not in ok.rules_fired


def test_flood_repeat_and_new_member_limits(conn: Connection, runtime: Runtime) -> None:
    setting(conn, "moderation", enabled=True, flood_messages=3, flood_seconds=60,
            new_member_days=0)
    fired = [ingest(conn, runtime, raw_message(f"f{i}", "g1", "u1", f"第{i}条",
                                               minutes=i * 0.1)).rules_fired
             for i in range(5)]
    assert fired[:3] == [(), (), ()] and fired[3] == ("moderation",)
    reasons = conn.execute(select(moderation_decisions.c.reasons)).scalars().first()
    assert any(r.startswith("刷屏") for r in reasons)
    # the same text from three different people within ten minutes is talk (a check-in
    # sentence, a shared answer), not a violation
    for i in range(3):
        result = ingest(conn, runtime, raw_message(f"r{i}", "g1", f"p{i}", "大家快来看看这个活动吧",
                                                   minutes=10 + i))
        assert result.rules_fired == ()
    # one person pasting it a third time is
    for i in range(3):
        result = ingest(conn, runtime, raw_message(f"s{i}", "g1", "p9", "大家快来看看这个活动吧",
                                                   minutes=12 + i))
    assert result.rules_fired == ("moderation",)
    reasons = conn.execute(select(moderation_decisions.c.reasons).order_by(
        moderation_decisions.c.id.desc())).scalars().first()
    assert "重复消息：10 分钟内第 3 次" in reasons
    # a new member's limit is tighter
    setting(conn, "moderation", new_member_days=3, new_member_flood_messages=2)
    ingest(conn, runtime, raw_join("nj", "g1", "new", minutes=20))
    out = [ingest(conn, runtime, raw_message(f"n{i}", "g1", "new", f"你好{i}",
                                             minutes=20 + i * 0.1)).rules_fired
           for i in range(3)]
    assert out[2] == ("moderation",)


def test_review_queue_confirm_and_overturn_feed_the_model(conn: Connection,
                                                          runtime: Runtime) -> None:
    setting(conn, "moderation", enabled=True, review_threshold=0.3, block_threshold=0.99)
    r = ingest(conn, runtime, raw_message("b1", "g1", "u1", "本店新品特价，欢迎光临"))
    assert r.rules_fired == ("moderation",) and r.outbox_ids == []  # review: no action yet
    pending = moderation.list_decisions(conn, actor=SYSTEM, status="pending")
    assert len(pending) == 1 and moderation.count_pending(conn) == 1
    before = runtime.automation.get(conn).classifier.model.samples
    done = moderation.do_review(conn, actor=SYSTEM, decision_id=pending[0]["id"], confirm=True,
                                capabilities=runtime.capabilities, now=T0)
    assert done["status"] == "confirmed" and done["action"] == "warn"
    warned = conn.execute(select(outbox.c.action_type).where(
        outbox.c.idempotency_key.like(f"review:{pending[0]['id']}:%"))).scalars().all()
    assert warned == ["send_text"]
    with pytest.raises(Conflict):  # confirmed once is enough
        moderation.do_review(conn, actor=SYSTEM, decision_id=pending[0]["id"], confirm=True,
                             capabilities=runtime.capabilities)
    assert runtime.automation.get(conn).classifier.model.samples == before + 1
    # the member's next queued message, once confirmed, escalates to removal
    ingest(conn, runtime, raw_message("b2", "g1", "u1", "本店新品特价，欢迎光临惠顾", minutes=5))
    second = moderation.list_decisions(conn, actor=SYSTEM, status="pending")[0]
    done = moderation.do_review(conn, actor=SYSTEM, decision_id=second["id"], confirm=True,
                                capabilities=runtime.capabilities, now=T0)
    assert done["action"] == "remove"


def test_checkins_streaks_points_leaderboard_and_refunds(conn: Connection,
                                                         runtime: Runtime) -> None:
    setting(conn, "checkin", enabled=True, refund_tiers=[
        {"min_checkins": 3, "percent": 100}, {"min_checkins": 2, "percent": 50}])
    setting(conn, "points", enabled=True, message=1, message_daily_cap=2, checkin=5)
    day = 24 * 60
    replies = []
    for d in (0, 1, 2, 4):  # a gap on day 3 resets the streak
        result = ingest(conn, runtime, raw_message(f"c{d}", "g1", "u1", "打卡",
                                                   minutes=d * day))
        replies += sent_texts(conn, result.outbox_ids)
    assert replies[2].endswith("已连续 3 天，累计 3 天")
    assert replies[3].endswith("已连续 1 天，累计 4 天")
    # a second check-in the same day is ordinary talk (earns message points, no reply)
    again = ingest(conn, runtime, raw_message("c4b", "g1", "u1", "打卡", minutes=4 * day + 1))
    assert "checkin" not in again.rules_fired and "points" in again.rules_fired
    # a question mentioning 打卡 is not a check-in
    ask = ingest(conn, runtime, raw_message("q", "g1", "u2", "今天怎么打卡？"))
    assert "checkin" not in ask.rules_fired
    for i in range(4):  # message points stop at the daily cap
        ingest(conn, runtime, raw_message(f"t{i}", "g1", "u2", f"聊天{i}", minutes=i))
    total = dict(conn.execute(select(points_ledger.c.reason, func.sum(points_ledger.c.points))
                              .group_by(points_ledger.c.reason)).all())
    assert total == {"checkin": 20, "message": 3}
    member = again.member_id
    assert conn.execute(select(member_counts.c.n).where(
        member_counts.c.member_id == member, member_counts.c.kind == "checkin")).scalar() == 4
    gid = again.group_id
    assert gid is not None
    start = (T0.astimezone(TZ)).date()
    board = checkins_service.leaderboard(conn, actor=SYSTEM, group_id=gid, period="all",
                                         tz=TZ, today=start + timedelta(days=4))
    assert board["rows"][0]["value"] == 4 and board["rows"][0]["best_streak"] == 3
    assert board["rows"][0]["current_streak"] == 1
    pts = checkins_service.leaderboard(conn, actor=SYSTEM, group_id=gid, period="all",
                                       metric="points", tz=TZ)
    assert [r["value"] for r in pts["rows"]] == [21, 2]
    refund = checkins_service.refunds(conn, actor=SYSTEM, group_id=gid, start=start,
                                      end=start + timedelta(days=1), deposit=99)
    assert refund["rows"][0]["checkins"] == 2 and refund["rows"][0]["refund"] == 49.5
    # a form check-in for today's other member; twice is refused
    form = checkins_service.do_form_checkin(conn, actor=SYSTEM, group_id=gid,
                                            member_id=int(ask.member_id or 0), tz=TZ, at=T0)
    assert form["streak"] == 1
    with pytest.raises(Conflict):
        checkins_service.do_form_checkin(conn, actor=SYSTEM, group_id=gid,
                                         member_id=int(ask.member_id or 0), tz=TZ, at=T0)
    assert conn.execute(select(func.count()).select_from(checkins)).scalar_one() == 5


def test_draws_are_reproducible_and_respect_eligibility(conn: Connection,
                                                        runtime: Runtime) -> None:
    for i in range(10):
        ingest(conn, runtime, raw_join(f"d{i}", "g1", f"u{i}"))
    talk = [ingest(conn, runtime, raw_message(f"dm{i}", "g1", f"u{i}", "hi")).member_id
            for i in range(4)]
    gid = ingest(conn, runtime, raw_message("dmx", "g1", "u0", "hi again")).group_id
    assert gid is not None
    clock = Clock(T0 + timedelta(minutes=5), TZ)
    draw = draws.do_draw(conn, actor=SYSTEM, group_id=gid, title="今晚抽奖", kind="lottery",
                         clock=clock, expression="messages[1h] >= 1",
                         prizes="一等奖:1,二等奖:2", seed="fixed-seed")
    assert sorted(draw["eligible"]) == sorted(talk)
    assert len(draw["winners"]) == 3 and {w["member_id"] for w in draw["winners"]} <= set(talk)
    again = draws.pick(draw["eligible"], "fixed-seed", kind="lottery",
                       prizes=draws.parse_prizes("一等奖:1,二等奖:2"))
    assert [w["member_id"] for w in again] == [w["member_id"] for w in draw["winners"]]
    assert draws.verify_draw(conn, actor=SYSTEM, draw_id=draw["id"])["verified"]
    packet = draws.do_draw(conn, actor=SYSTEM, group_id=gid, title="红包", kind="red_packet",
                           clock=clock, amount=10, count=5)
    assert round(sum(w["amount"] for w in packet["winners"]), 2) == 10.0
    assert all(w["amount"] >= 0.01 for w in packet["winners"])
    before = snapshot(conn)
    with pytest.raises(InvalidInput, match="NAME:STOCK"):
        draws.do_draw(conn, actor=SYSTEM, group_id=gid, title="x", kind="lottery",
                      clock=clock, prizes="一等奖")
    with pytest.raises(InvalidInput, match="nobody is eligible"):
        draws.do_draw(conn, actor=SYSTEM, group_id=gid, title="x", kind="lottery",
                      clock=clock, prizes="a:1", expression="messages >= 100")
    assert snapshot(conn) == before


def test_platform_without_remove_turns_moderation_into_staff_tasks(
        conn: Connection, runtime: Runtime, tmp_path: Path) -> None:
    runtime.adapters["sandbox"] = SandboxAdapter(SandboxStore(str(tmp_path / "w.db")),
                                                 profile="wecom")
    setting(conn, "moderation", enabled=True, escalation=["remove"])
    result = ingest(conn, runtime, raw_message("w1", "g1", "spam",
                                               "低息贷款当天放款，联系电话 13812345678"))
    row = conn.execute(select(outbox.c.status, staff_tasks.c.title, staff_tasks.c.kind)
                       .join(staff_tasks, outbox.c.staff_task_id == staff_tasks.c.id)
                       .where(outbox.c.id.in_(result.outbox_ids))).one()
    assert row.status == "staff_task" and row.kind == "remove_member"


def test_settings_are_validated_and_nothing_changes_on_error(conn: Connection) -> None:
    before = automation.current_version(conn)
    with pytest.raises(InvalidInput, match="review_threshold"):
        setting(conn, "moderation", review_threshold=0.9, block_threshold=0.8)
    with pytest.raises(InvalidInput, match="section"):
        setting(conn, "nonsense", enabled=True)
    with pytest.raises(InvalidInput, match="batch_seconds"):
        setting(conn, "welcome", batch_seconds=-1)
    assert automation.current_version(conn) == before
    with pytest.raises(InvalidInput, match="pattern"):
        faqs_service.do_create_faq(conn, actor=SYSTEM, questions=[], answer="x",
                                   match="regex", pattern="(")
    with pytest.raises(InvalidInput, match=r"pattern: .*back references"):
        faqs_service.do_create_faq(conn, actor=SYSTEM, questions=[], answer="x",
                                   match="regex", pattern=r"(.)\1{3}")


def test_faq_csv_import_reports_the_line(conn: Connection) -> None:
    good = "id,question,answer\nprice,多少钱,99元\nprice,价格多少,\nship,几天发货,三天\n"
    out = faqs_service.do_import_faqs(conn, actor=SYSTEM, data=good.encode(), name="faq.csv")
    assert out == {"created": 2, "replaced": 0}
    assert faqs_service.do_import_faqs(conn, actor=SYSTEM, data=good.encode(),
                                       name="faq.csv") == {"created": 0, "replaced": 2}
    before = conn.execute(select(func.count()).select_from(faqs)).scalar_one()
    bad = "id,question,answer\na,问题,答\nb,问题二\n"
    with pytest.raises(InvalidInput, match=r"bad.csv:3: 2 fields"):
        faqs_service.do_import_faqs(conn, actor=SYSTEM, data=bad.encode(), name="bad.csv")
    with pytest.raises(InvalidInput, match=r"x.csv:1: missing column"):
        faqs_service.do_import_faqs(conn, actor=SYSTEM, data=b"q,a\n1,2\n", name="x.csv")
    assert conn.execute(select(func.count()).select_from(faqs)).scalar_one() == before
