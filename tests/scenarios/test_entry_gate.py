"""Seed 002's entry thresholds, with every automation on: a paid camp's group lets in only
those who enrolled and paid the deposit, a parents' group asks a question first and a
person reads the answers; a raid account and a blacklisted advertiser ask too.

What must hold where the features meet: the gate decides before anything else looks at an
applicant (nobody greets, moderates or counts a request), the ones let in are greeted once
when the platform reports their join and their shared check-in sentence is a check-in, not
spam; the declined are told why, except the spammers; a request nobody answers is declined
when its time is up; a repeated request is one request.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import Connection, func, select

from qunyun.adapters.platforms.sandbox.adapter import SandboxAdapter
from qunyun.adapters.platforms.wecom.adapter import CAPABILITIES as WECOM_CAPABILITIES
from qunyun.adapters.storage.tables import audit_log, checkins, join_requests
from qunyun.bootstrap import Runtime
from qunyun.services import activities, automation, blacklist, enrolments, entry, join_codes
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.users import SYSTEM
from tests.scenarios.live import Live, days_ago

QUESTION = "你好！请问孩子几年级？是怎么知道我们群的？"


def greeted_in(live: Live, group_id: int) -> list[int]:
    return [m for row in live.sent(rule="welcome") if row["group_id"] == group_id
            for m in row["payload"]["mention_member_ids"]]


def test_entry_thresholds_with_everything_on(conn: Connection, live: Live) -> None:
    live.switch_everything_on()
    start = days_ago(3) + timedelta(hours=9)
    # where the students come from: last term's open class
    live.group("open", "公开课交流群", start - timedelta(days=20))
    students = {f"s{i}": f"学员{i}" for i in range(5)}
    for i, (user, name) in enumerate(students.items()):
        live.join("open", user, name, start - timedelta(days=19, minutes=-i))
        live.say("open", user, "老师好", start - timedelta(days=19, minutes=-i - 1))
    live.join("open", "ad", "推广小张", start - timedelta(days=18))
    live.say("open", "ad", "你好", start - timedelta(days=18, minutes=-1))
    blacklist.do_blacklist(conn, actor=SYSTEM, member_id=live.member("ad"), reason="发广告",
                           capabilities=live.runtime.capabilities)

    camp = live.group("camp", "英语训练营3期", start - timedelta(days=1))
    parents = live.group("parents", "三年级家长群", start - timedelta(days=1))
    activities.do_create_series(conn, actor=SYSTEM, code="C", name="英语训练营")
    issue = activities.do_create_activity(conn, actor=SYSTEM, series="C",
                                          starts_on=start.date(),
                                          ends_on=(start + timedelta(days=20)).date(),
                                          group_ids=[camp], deposit_fen=9900)
    for user, deposit in (("s0", 9900), ("s1", 9900), ("s2", 9900), ("s3", 0)):
        enrolments.do_enrol(conn, actor=SYSTEM, activity_id=issue,
                            member_id=live.member(user), deposit_fen=deposit,
                            at=start - timedelta(hours=12))
    automation.do_update_settings(conn, actor=SYSTEM, section="entry", group_id=camp, values={
        "gate": "activity", "activity_id": issue, "need_deposit": True})
    automation.do_update_settings(conn, actor=SYSTEM, section="entry", group_id=parents,
                                  values={"gate": "questions", "question_text": QUESTION,
                                          "timeout_hours": 12})

    # the camp: the paid are let in, the unpaid and a stranger told why, spammers not told
    for i, user in enumerate(("s0", "s1", "s2", "s3", "s4")):
        live.request("camp", user, students[user], start + timedelta(minutes=i),
                     channel="报名表")
    live.request("camp", "raid", "兼职日结 加V：abc12345", start + timedelta(minutes=6))
    live.request("camp", "ad", "推广小张", start + timedelta(minutes=7))
    live.catch_up(start + timedelta(minutes=10))
    answered = {(r["payload"]["member_id"], r["payload"]["approve"])
                for r in live.sent("answer_join_request")}
    ids = {u: live.member(u) for u in ("s0", "s1", "s2", "s3", "s4", "raid", "ad")}
    assert answered == {(ids["s0"], True), (ids["s1"], True), (ids["s2"], True),
                        (ids["s3"], False), (ids["s4"], False), (ids["raid"], False),
                        (ids["ad"], False)}
    told = {r["payload"]["member_id"]: r["payload"]["text"] for r in live.sent("send_private")}
    assert told == {ids["s3"]: "抱歉，你的入群申请未通过：你还没有交押金",
                    ids["s4"]: "抱歉，你的入群申请未通过：你还没有报名本期活动"}
    assert conn.execute(select(func.count()).select_from(join_requests).where(
        join_requests.c.group_id == camp)).scalar() == 7
    # nothing but the gate looked at the applicants: no moderation, no greeting yet
    assert live.decisions() == [] and greeted_in(live, camp) == []

    # the platform reports the joins of those let in: greeted once, together
    for i, user in enumerate(("s0", "s1", "s2")):
        live.join("camp", user, students[user], start + timedelta(minutes=11, seconds=i))
    live.catch_up(start + timedelta(minutes=13))
    assert sorted(greeted_in(live, camp)) == sorted(ids[u] for u in ("s0", "s1", "s2"))
    # the next morning all three check in with the same sentence: check-ins, not spam
    morning = start + timedelta(days=1, hours=-2)
    for i, user in enumerate(("s0", "s1", "s2")):
        live.say("camp", user, "打卡 第1天 跟读完成", morning + timedelta(minutes=i))
    live.catch_up(morning + timedelta(minutes=5))
    assert conn.execute(select(func.count()).select_from(checkins).where(
        checkins.c.group_id == camp)).scalar() == 3
    assert live.decisions() == []

    # the parents' group: asked privately at once; two answer, one never does
    for i, (user, name) in enumerate((("p1", "王妈妈"), ("p2", "李爸爸"), ("p3", "Lily妈"))):
        live.request("parents", user, name, start + timedelta(hours=1, minutes=i))
    live.request("parents", "p3", "Lily妈", start + timedelta(hours=1, minutes=4))  # again
    live.catch_up(start + timedelta(hours=1, minutes=5))
    assert conn.execute(select(func.count()).select_from(join_requests).where(
        join_requests.c.group_id == parents)).scalar() == 3
    pids = {u: live.member(u) for u in ("p1", "p2", "p3")}
    asked = [r["payload"] for r in live.sent("send_private")
             if r["payload"]["member_id"] in pids.values()]
    assert sorted(p["member_id"] for p in asked) == sorted(pids.values())  # each once
    assert {p["text"] for p in asked} == {QUESTION}
    live.answer("p1", "三年级二班，学校群转发的", start + timedelta(hours=1, minutes=10))
    live.answer("p2", "卖课的朋友介绍", start + timedelta(hours=1, minutes=12))
    waiting = {r["member"]: r for r in entry.list_requests(conn, actor=SYSTEM,
                                                           group_id=parents)}
    assert {k: v["status"] for k, v in waiting.items()} == {
        "王妈妈": "answered", "李爸爸": "answered", "Lily妈": "asked"}
    assert waiting["王妈妈"]["answers"][0]["text"] == "三年级二班，学校群转发的"
    decided_at = start + timedelta(hours=2)
    entry.do_decide(conn, actor=SYSTEM, request_id=waiting["王妈妈"]["id"], approve=True,
                    capabilities=live.runtime.capabilities, now=decided_at)
    entry.do_decide(conn, actor=SYSTEM, request_id=waiting["李爸爸"]["id"], approve=False,
                    reason="本群只对本校家长开放", capabilities=live.runtime.capabilities,
                    now=decided_at)
    live.catch_up(decided_at + timedelta(minutes=1))
    # twelve hours on, the worker declines the one nobody could decide
    late = start + timedelta(hours=13, minutes=5)
    (expired,) = entry.expire_due(conn, now=late, capabilities=live.runtime.capabilities)
    assert expired == waiting["Lily妈"]["id"]
    live.catch_up(late + timedelta(minutes=1))
    parents_answers = {(r["payload"]["member_id"], r["payload"]["approve"])
                       for r in live.sent("answer_join_request")
                       if r["payload"]["member_id"] in pids.values()}
    assert parents_answers == {(pids["p1"], True), (pids["p2"], False), (pids["p3"], False)}
    texts = {r["payload"]["member_id"]: r["payload"]["text"] for r in live.sent("send_private")
             if r["payload"]["text"] != QUESTION}
    assert texts[pids["p2"]] == "抱歉，你的入群申请未通过：本群只对本校家长开放"
    assert texts[pids["p3"]] == "抱歉，你的入群申请未通过：超时未处理"
    assert entry.list_requests(conn, actor=SYSTEM) == []  # nothing left waiting
    assert {a for (a,) in conn.execute(select(audit_log.c.action).where(
        audit_log.c.action.like("entry.%")))} == {"entry.approve", "entry.decline",
                                                  "entry.expire"}
    # nothing waits for a person in the outbox: every answer went out by itself
    assert live.sent("answer_join_request", status="staff_task") == []


def test_invitation_only_and_share_to_join(conn: Connection, live: Live) -> None:
    """A members-only club lets in whoever a current member invited (their own code) and
    turns strangers down; a VIP group asks for a share screenshot that a person checks."""
    live.switch_everything_on()
    live.runtime.settings = live.runtime.settings.model_copy(
        update={"public_url": "https://qun.example.com"})
    start = days_ago(2) + timedelta(hours=10)
    club = live.group("club", "读书会", start - timedelta(days=3))
    for i, (user, name) in enumerate((("m1", "老会员阿林"), ("m2", "老会员小周"))):
        live.join("club", user, name, start - timedelta(days=2, minutes=-i))
    automation.do_update_settings(conn, actor=SYSTEM, section="entry", group_id=club,
                                  values={"gate": "invitation"})
    account = getattr(live, "bot_id", "demo")
    codes = {who: entry.do_invitation_code(live.runtime.uow, actor=SYSTEM,
                                           adapter_for=live.runtime.adapter, account=account,
                                           group_id=club, member_id=live.member(who))
             for who in ("m1", "m2")}
    again = entry.do_invitation_code(live.runtime.uow, actor=SYSTEM,
                                     adapter_for=live.runtime.adapter, account=account,
                                     group_id=club, member_id=live.member("m1"))
    assert again["join_code_id"] == codes["m1"]["join_code_id"]  # made once
    live.feed({"type": "leave", "at": start - timedelta(hours=1), "chat": "club",
               "user": "m2"})  # m2 left: their code no longer vouches for anyone
    live.request("club", "f1", "阿林的朋友", start, channel=codes["m1"]["code"])
    live.request("club", "f2", "小周的朋友", start + timedelta(minutes=1),
                 channel=codes["m2"]["code"])
    live.request("club", "f3", "路人", start + timedelta(minutes=2))
    live.catch_up(start + timedelta(minutes=5))
    f = {u: live.member(u) for u in ("f1", "f2", "f3")}
    answers = {r["payload"]["member_id"]: r["payload"]["approve"]
               for r in live.sent("answer_join_request")}
    assert answers == {f["f1"]: True, f["f2"]: False, f["f3"]: False}
    told = {r["payload"]["member_id"]: r["payload"]["text"] for r in live.sent("send_private")}
    refusal = "抱歉，你的入群申请未通过：本群只接受群成员邀请，请找群里的朋友要邀请链接"
    assert told == {f["f2"]: refusal, f["f3"]: refusal}
    (let_in,) = entry.list_requests(conn, actor=SYSTEM, status="approved", group_id=club)
    assert let_in["reason"] == "由群成员 老会员阿林 邀请"

    # the VIP group: a share screenshot, uploaded through the applicant's own link
    vip = live.group("vip", "会员福利群", start - timedelta(days=1))
    automation.do_update_settings(conn, actor=SYSTEM, section="entry", group_id=vip,
                                  values={"gate": "share"})
    at = start + timedelta(hours=1)
    live.request("vip", "v1", "分享达人", at)
    live.request("vip", "v2", "不分享的人", at + timedelta(minutes=1))
    live.catch_up(at + timedelta(minutes=2))
    v = {u: live.member(u) for u in ("v1", "v2")}
    asked = {r["payload"]["member_id"]: r["payload"]["text"] for r in live.sent("send_private")
             if r["payload"]["member_id"] in v.values()}
    waiting = {r["member_id"]: r for r in entry.list_requests(conn, actor=SYSTEM,
                                                              group_id=vip)}
    token = conn.execute(select(join_requests.c.token).where(
        join_requests.c.id == waiting[v["v1"]]["id"])).scalar_one()
    assert asked[v["v1"]] == ("入群前请把我们的海报分享到朋友圈，截图后在这里上传："
                              f"https://qun.example.com/entry/s/{token}")
    assert {r["status"] for r in waiting.values()} == {"asked"}
    folder = live.runtime.settings.data_dir / "posters"
    entry.do_upload(conn, token=token, data=_png(), folder=folder, now=at + timedelta(minutes=5))
    form = entry.share_form(conn, token=token)
    assert form == {"group": "会员福利群", "status": "answered", "open": True,
                    "uploaded": True, "reason": ""}
    shown = entry.access_request_by_id(conn, actor=SYSTEM, request_id=waiting[v["v1"]]["id"])
    assert shown["screenshot"] and entry.screenshot(
        conn, actor=SYSTEM, request_id=shown["id"], folder=folder).startswith(b"\x89PNG")
    entry.do_decide(conn, actor=SYSTEM, request_id=shown["id"], approve=True,
                    capabilities=live.runtime.capabilities, now=at + timedelta(minutes=8))
    live.catch_up(at + timedelta(minutes=9))
    assert {r["payload"]["member_id"]: r["payload"]["approve"]
            for r in live.sent("answer_join_request")
            if r["payload"]["member_id"] in v.values()} == {v["v1"]: True}
    # a decided request takes no more uploads; a forged token is refused
    with pytest.raises(Conflict):
        entry.do_upload(conn, token=token, data=_png(), folder=folder, now=at)
    with pytest.raises(NotFound):
        entry.share_form(conn, token="x" * 24)
    assert live.sent("answer_join_request", status="staff_task") == []


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 80), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_a_platform_without_join_requests_hands_out_the_join_code(
        conn: Connection, runtime: Runtime, sandbox: SandboxAdapter) -> None:
    """WeCom holds no join request: an application reaches staff privately and is recorded;
    letting the applicant in sends them the group's join code (a person sends it, as WeCom
    lets no bot write privately), turning them down is the one message, nothing else."""
    sandbox.capabilities = WECOM_CAPABILITIES
    live = Live(conn, runtime)
    live.switch_everything_on()
    start = days_ago(1) + timedelta(hours=9)
    gid = live.group("wx", "企微训练营", start - timedelta(days=2))
    automation.do_update_settings(conn, actor=SYSTEM, section="entry", group_id=gid,
                                  values={"gate": "review"})
    for i, user in enumerate(("a1", "a2", "a3")):  # customers the staff account knows
        live.answer(user, "你好，想进训练营群", start - timedelta(hours=1, minutes=-i))
    ids = {u: live.member(u) for u in ("a1", "a2", "a3")}

    # no join code for the group yet: letting a1 in is a person's job
    first = entry.do_apply(conn, actor=SYSTEM, group_id=gid, config=runtime.ingest_config,
                           member_id=ids["a1"], note="朋友介绍", now=start)
    assert first["status"] == "pending" and first["bio"] == "朋友介绍"
    entry.do_decide(conn, actor=SYSTEM, request_id=first["id"], approve=True,
                    capabilities=runtime.capabilities, now=start + timedelta(minutes=1))
    (task,) = live.sent("answer_join_request", status="staff_task")
    assert task["member_id"] == ids["a1"]

    # with the group's join code: approval sends it, a decline is the decline message only
    code = join_codes.do_create_join_code(runtime.uow, actor=SYSTEM, adapter=sandbox,
                                          account="corp", channel="训练营", chats=["wx"])
    for user in ("a2", "a3"):
        entry.do_apply(conn, actor=SYSTEM, group_id=gid, config=runtime.ingest_config,
                       member_id=ids[user], now=start + timedelta(minutes=5))
    waiting = {r["member_id"]: r["id"] for r in entry.list_requests(conn, actor=SYSTEM)}
    entry.do_decide(conn, actor=SYSTEM, request_id=waiting[ids["a2"]], approve=True,
                    capabilities=runtime.capabilities, now=start + timedelta(minutes=6))
    entry.do_decide(conn, actor=SYSTEM, request_id=waiting[ids["a3"]], approve=False,
                    reason="名额已满", capabilities=runtime.capabilities,
                    now=start + timedelta(minutes=6))
    private = {r["member_id"]: r["payload"]["text"]
               for r in live.sent("send_private", status="staff_task")}
    assert private == {ids["a2"]: f"你的入群申请已通过，点这个链接进群：{code['qr_code']}",
                       ids["a3"]: "抱歉，你的入群申请未通过：名额已满"}
    assert [r["member_id"] for r in live.sent("answer_join_request", status="staff_task")] \
        == [ids["a1"]]  # nothing else for a person to answer on the platform

    # the gate deciding by itself: an invitation gate lets in a member's friend
    automation.do_update_settings(conn, actor=SYSTEM, section="entry", group_id=gid,
                                  values={"gate": "invitation"})
    live.join("wx", "a2", "", start + timedelta(minutes=20), channel="训练营")
    mine = entry.do_invitation_code(runtime.uow, actor=SYSTEM, adapter_for=runtime.adapter,
                                    account="corp", group_id=gid, member_id=ids["a2"])
    friend = entry.do_apply(conn, actor=SYSTEM, group_id=gid, config=runtime.ingest_config,
                            user="wm-friend", name="a2的同事", channel=mine["code"],
                            now=start + timedelta(minutes=30))
    assert friend["status"] == "approved"
    (sent,) = [r for r in live.sent("send_private", status="staff_task")
               if r["member_id"] == friend["member_id"]]
    assert code["qr_code"] in sent["payload"]["text"]  # the shared code, not a2's own
    with pytest.raises(InvalidInput):
        entry.do_apply(conn, actor=SYSTEM, group_id=gid, config=runtime.ingest_config,
                       now=start)
