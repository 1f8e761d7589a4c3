"""The entry gate on Telegram's join requests, against the fake Bot API over HTTP: the
gate asks, lets in, turns down and times out by itself; people decide the rest from the
queue; Telegram's answers and the join that follows go through the outbox and ingest."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from qunyun.adapters.platforms.telegram.fake import FakeTelegram
from qunyun.adapters.storage.tables import (
    audit_log,
    groups,
    join_requests,
    outbox,
    staff_tasks,
)
from qunyun.bootstrap import Runtime
from qunyun.services import activities, automation, blacklist, enrolments, entry
from qunyun.services import groups as groups_service
from qunyun.services import outbox as outbox_service
from qunyun.services.members import member_id_by_number
from qunyun.services.users import SYSTEM
from tests.adapters.telegram.conftest import CHAT
from tests.adapters.telegram.test_connector import connect, pump


def deliver(rt: Runtime, rounds: int = 3) -> None:
    for _ in range(rounds):
        outbox_service.deliver_due(rt.uow, adapters=rt.adapters, limiter=rt.limiter,
                                   worker_id="w", policy=rt.policy, rng=random.Random(1))


def gate(conn: Connection, **values: Any) -> None:
    automation.do_update_settings(conn, actor=SYSTEM, section="entry", values=values)


def request_row(conn: Connection, uid: int) -> dict[str, Any]:
    rows = entry.list_requests(conn, actor=SYSTEM, status="all")
    (found,) = [r for r in rows if r["member"].startswith(str(uid)) or r["member"] == NAMES[uid]]
    return found


NAMES = {601: "申请 人", 602: "Lily \"L\"", 603: "广告 哥", 604: "报名 者", 605: "没报 名"}


def private_texts(tg: FakeTelegram, uid: int) -> list[str]:
    return [c["text"] for c in tg.called("sendMessage") if str(c["chat_id"]) == str(uid)]


def test_questions_then_a_person_lets_them_in_and_the_join_is_greeted(
        conn: Connection, tg_runtime: Runtime, tg: FakeTelegram) -> None:
    gate(conn, gate="questions", question_text="你是怎么知道我们群的？")
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    pump(tg_runtime, bot["bot_id"])
    groups_service.do_update_group(
        conn, actor=SYSTEM, group_id=conn.execute(select(groups.c.id)).scalar_one(),
        now=tg_runtime.now(), changes={"welcome_template": "欢迎 @{name}！"})
    tg.join_request(token, CHAT, 601, NAMES[601], link_name="海报B", bio="宝妈 <三年级>")
    assert pump(tg_runtime, bot["bot_id"]).failed == 0
    deliver(tg_runtime)
    # asked privately within the request's 5-minute window, though they never pressed Start
    assert private_texts(tg, 601) == ["你是怎么知道我们群的？"]
    row = request_row(conn, 601)
    assert (row["status"], row["channel"], row["bio"]) == ("asked", "海报B", "宝妈 <三年级>")
    tg.private(token, 601, NAMES[601], "朋友圈看到的 <海报>")
    tg.private(token, 601, NAMES[601], "/start")  # a command is not an answer
    pump(tg_runtime, bot["bot_id"])
    row = request_row(conn, 601)
    assert row["status"] == "answered"
    assert [a["text"] for a in row["answers"]] == ["朋友圈看到的 <海报>"]
    assert not tg.called("approveChatJoinRequest")  # a person reads the answers
    decided = entry.do_decide(conn, actor=SYSTEM, request_id=row["id"], approve=True,
                              capabilities=tg_runtime.capabilities, now=tg_runtime.now())
    assert decided["status"] == "approved"
    deliver(tg_runtime)
    assert tg.called("approveChatJoinRequest") == [{"chat_id": str(CHAT), "user_id": 601}]
    # Telegram reports the join; the newcomer is greeted like anyone who joins
    pump(tg_runtime, bot["bot_id"])
    deliver(tg_runtime)
    assert any("tg://user?id=601" in c["text"] for c in tg.called("sendMessage")
               if c["chat_id"] == str(CHAT))
    assert request_row(conn, 601)["status"] == "approved"
    assert conn.execute(select(audit_log.c.action).where(
        audit_log.c.action == "entry.approve")).scalar() == "entry.approve"


def test_an_answer_lets_them_in_where_the_group_says_so(conn: Connection,
                                                       tg_runtime: Runtime,
                                                       tg: FakeTelegram) -> None:
    gate(conn, gate="questions", approve_answered=True)
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    tg.join_request(token, CHAT, 602, NAMES[602])
    pump(tg_runtime, bot["bot_id"])
    tg.private(token, 602, NAMES[602], "同事推荐")
    pump(tg_runtime, bot["bot_id"])
    deliver(tg_runtime)
    assert tg.called("approveChatJoinRequest") == [{"chat_id": str(CHAT), "user_id": 602}]
    assert request_row(conn, 602)["status"] == "approved"


def test_open_gate_lets_everyone_in_but_the_blacklisted_who_are_told_nothing(
        conn: Connection, tg_runtime: Runtime, tg: FakeTelegram) -> None:
    gate(conn, gate="open")
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    tg.join_request(token, CHAT, 602, NAMES[602])
    tg.message(token, CHAT, 603, NAMES[603], "你好")  # known to qunyun, then blacklisted
    pump(tg_runtime, bot["bot_id"])
    blacklist.do_blacklist(conn, actor=SYSTEM, member_id=member_id_by_number(conn, 10002),
                           reason="发广告", capabilities=tg_runtime.capabilities)
    tg.join_request(token, CHAT, 603, NAMES[603])
    pump(tg_runtime, bot["bot_id"])
    deliver(tg_runtime)
    assert tg.called("approveChatJoinRequest") == [{"chat_id": str(CHAT), "user_id": 602}]
    assert tg.called("declineChatJoinRequest") == [{"chat_id": str(CHAT), "user_id": 603}]
    assert private_texts(tg, 603) == []
    row = request_row(conn, 603)
    assert (row["status"], row["reason"], row["blacklisted"]) == ("declined", "发广告", True)


def test_activity_gate_checks_enrolment_and_deposit(conn: Connection, tg_runtime: Runtime,
                                                    tg: FakeTelegram) -> None:
    activities.do_create_series(conn, actor=SYSTEM, code="X", name="训练营")
    activity_id = activities.do_create_activity(conn, actor=SYSTEM, series="X",
                                                starts_on="2026-12-10", ends_on="2026-12-30")
    gate(conn, gate="activity", activity_id=activity_id, need_deposit=True)
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    tg.message(token, CHAT, 604, NAMES[604], "在吗")
    tg.message(token, CHAT, 605, NAMES[605], "在吗")
    tg.leave(token, CHAT, 604, NAMES[604])
    tg.leave(token, CHAT, 605, NAMES[605])
    pump(tg_runtime, bot["bot_id"])
    enrolments.do_enrol(conn, actor=SYSTEM, activity_id=activity_id,
                        member_id=member_id_by_number(conn, 10001), deposit_fen=9900)
    enrolments.do_enrol(conn, actor=SYSTEM, activity_id=activity_id,
                        member_id=member_id_by_number(conn, 10002), deposit_fen=0)
    tg.join_request(token, CHAT, 604, NAMES[604])
    tg.join_request(token, CHAT, 605, NAMES[605])
    tg.join_request(token, CHAT, 606, "陌生 人")
    pump(tg_runtime, bot["bot_id"])
    deliver(tg_runtime)
    assert [c["user_id"] for c in tg.called("approveChatJoinRequest")] == [604]
    assert sorted(c["user_id"] for c in tg.called("declineChatJoinRequest")) == [605, 606]
    assert private_texts(tg, 605) == ["抱歉，你的入群申请未通过：你还没有交押金"]
    assert private_texts(tg, 606) == ["抱歉，你的入群申请未通过：你还没有报名本期活动"]


def test_requests_nobody_answers_time_out_and_a_replay_queues_once(
        conn: Connection, tg_runtime: Runtime, tg: FakeTelegram) -> None:
    gate(conn, timeout_hours=2)  # review: a person decides
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    sent = tg.join_request(token, CHAT, 601, NAMES[601])
    pump(tg_runtime, bot["bot_id"])
    tg.bots[token].updates.append(sent)  # Telegram sends it again
    tg.join_request(token, CHAT, 601, NAMES[601])  # and they ask again
    pump(tg_runtime, bot["bot_id"])
    assert len(entry.list_requests(conn, actor=SYSTEM)) == 1
    conn.execute(update(join_requests).values(  # it arrived a while ago
        requested_at=tg_runtime.now() - timedelta(hours=1, minutes=50)))
    assert entry.expire_due(conn, now=tg_runtime.now(),
                            capabilities=tg_runtime.capabilities) == []
    conn.execute(update(join_requests).values(
        requested_at=tg_runtime.now() - timedelta(hours=2, minutes=1)))
    (expired,) = entry.expire_due(conn, now=tg_runtime.now(),
                                  capabilities=tg_runtime.capabilities)
    deliver(tg_runtime)
    assert tg.called("declineChatJoinRequest") == [{"chat_id": str(CHAT), "user_id": 601}]
    assert private_texts(tg, 601) == ["抱歉，你的入群申请未通过：超时未处理"]
    row = request_row(conn, 601)
    assert (row["id"], row["status"]) == (expired, "expired")
    assert entry.list_requests(conn, actor=SYSTEM) == []


def test_a_request_approved_in_the_app_is_closed_by_the_join(conn: Connection,
                                                            tg_runtime: Runtime,
                                                            tg: FakeTelegram) -> None:
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    tg.join_request(token, CHAT, 601, NAMES[601])
    pump(tg_runtime, bot["bot_id"])
    tg.join(token, CHAT, 601, NAMES[601])  # an admin tapped "approve" in Telegram
    pump(tg_runtime, bot["bot_id"])
    row = request_row(conn, 601)
    assert (row["status"], row["by_platform"]) == ("approved", True)
    assert entry.expire_due(conn, now=tg_runtime.now() + timedelta(days=2),
                            capabilities=tg_runtime.capabilities) == []


def test_without_the_invite_right_a_person_answers_the_request(conn: Connection,
                                                              tg_runtime: Runtime,
                                                              tg: FakeTelegram) -> None:
    gate(conn, gate="open")
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT, rights={"can_delete_messages": True})
    tg.join_request(token, CHAT, 601, NAMES[601])
    pump(tg_runtime, bot["bot_id"])
    deliver(tg_runtime)
    row = conn.execute(select(outbox).where(outbox.c.action_type == "answer_join_request")
                       ).mappings().one()
    assert row["status"] == "staff_task" and "邀请成员" in row["last_error"]
    assert conn.execute(select(staff_tasks.c.status).where(
        staff_tasks.c.id == row["staff_task_id"])).scalar_one() == "open"
    # the gate decided; the row says so even while a person carries it out
    assert conn.execute(select(join_requests.c.status)).scalar_one() == "approved"


def test_an_ad_in_the_applicants_name_is_turned_down_whatever_the_gate(
        conn: Connection, tg_runtime: Runtime, tg: FakeTelegram) -> None:
    """Moderation's name check holds at the gate: a raid account is not let in to be
    removed a moment later; nobody is greeted or told."""
    gate(conn, gate="open")
    automation.do_update_settings(conn, actor=SYSTEM, section="moderation",
                                  values={"enabled": True})
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    tg.join_request(token, CHAT, 801, "免费资料 @free_vip_bot")
    tg.join_request(token, CHAT, 802, "小 王")
    pump(tg_runtime, bot["bot_id"])
    deliver(tg_runtime)
    assert [c["user_id"] for c in tg.called("declineChatJoinRequest")] == [801]
    assert [c["user_id"] for c in tg.called("approveChatJoinRequest")] == [802]
    assert private_texts(tg, 801) == []
    declined = entry.list_requests(conn, actor=SYSTEM, status="declined")
    assert len(declined) == 1 and declined[0]["reason"].startswith("昵称：免费资料")
