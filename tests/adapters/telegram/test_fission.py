"""A referral campaign in a Telegram group, against the fake Bot API: a participant's code
is a named invite link, joins through it are credited by the link's name, and the bot tells
the inviter their progress in the group."""

from __future__ import annotations

import random

from sqlalchemy import Connection, select

from qunyun.adapters.platforms.telegram.fake import FakeTelegram
from qunyun.adapters.storage.tables import audit_log, groups, staff_tasks
from qunyun.bootstrap import Runtime
from qunyun.domain.fission import Stage
from qunyun.services import fission
from qunyun.services import outbox as outbox_service
from qunyun.services.members import member_id_by_number
from qunyun.services.users import SYSTEM
from tests.adapters.telegram.conftest import CHAT
from tests.adapters.telegram.test_connector import connect, pump


def deliver(rt: Runtime) -> None:
    """The worker's delivery, twice (a send may queue another)."""
    for _ in range(2):
        outbox_service.deliver_due(rt.uow, adapters=rt.adapters, limiter=rt.limiter,
                                   worker_id="w", policy=rt.policy, rng=random.Random(1))


def settle(rt: Runtime) -> int:
    """The worker's settling of due invites, and what it queued goes out."""
    with rt.uow.write() as conn:
        done = fission.validate_due(conn, now=rt.now(), capabilities=rt.capabilities)
    deliver(rt)
    return done


def follow_up(rt: Runtime) -> int:
    """The worker's fission follow-ups, and what they queued goes out."""
    done = fission.follow_up(rt.uow, adapter_for=rt.adapter, capabilities=rt.capabilities,
                             now=rt.now(), public_url="https://qy.example")
    deliver(rt)
    return done


def test_a_participants_link_credits_the_friends_who_join_through_it(
        conn: Connection, tg_runtime: Runtime, tg: FakeTelegram) -> None:
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    tg.join(token, CHAT, 501, "小 王")
    pump(tg_runtime, bot["bot_id"])
    gid = conn.execute(select(groups.c.id)).scalar_one()
    campaign = fission.do_create_campaign(
        conn, actor=SYSTEM, name="邀 2 人领资料", group_ids=[gid], account=bot["bot_id"],
        stages=[Stage(2, "资料包", 10)], now=tg_runtime.now())
    mine = fission.do_join(tg_runtime.uow, actor=SYSTEM, adapter_for=tg_runtime.adapter,
                           campaign_id=campaign["id"],
                           member_id=member_id_by_number(conn, 10001), now=tg_runtime.now())
    made = tg.called("createChatInviteLink")[-1]
    assert made["name"] == mine["code"] and mine["link"].startswith("https://t.me/+")
    tg.join(token, CHAT, 601, "Amy", link_name=mine["code"])
    pump(tg_runtime, bot["bot_id"])
    assert settle(tg_runtime) == 1
    tg.join(token, CHAT, 602, "Ben", link_name=mine["code"])
    tg.join(token, CHAT, 603, "路人", link_name="海报A")  # another channel: not theirs
    pump(tg_runtime, bot["bot_id"])
    assert settle(tg_runtime) == 1
    told = [c["text"] for c in tg.called("sendMessage") if "tg://user?id=501" in c["text"]]
    assert any("已有效邀请 1 人" in t for t in told), told
    assert any("恭喜完成「资料包」任务" in t for t in told), told
    report = fission.report(conn, actor=SYSTEM, campaign_id=campaign["id"],
                            tz=tg_runtime.settings.tz)
    assert (report["valid_invites"], report["completed"]) == (2, 1)


def test_follow_ups_on_telegram_and_when_the_platform_refuses(
        conn: Connection, tg_runtime: Runtime, tg: FakeTelegram) -> None:
    """Newcomers through a code get their own named link in the welcome (no picture: the
    bot sends text only); the completer's claim link and completers' invitation go
    privately through the bot they started. When Telegram refuses a link (the bot is not an
    admin of the completers' group, or of the group), the completer's invitation becomes a
    staff task and a newcomer's failed code is written in the audit log — nothing repeats."""
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    tg.add_chat(CHAT - 1, "完成者群")
    tg.bot_added(token, CHAT - 1, admin=False)  # it may not make links there
    tg.join(token, CHAT, 501, "小 王")
    tg.private(token, 501, "小 王", "/start")
    pump(tg_runtime, bot["bot_id"])
    ids = dict(conn.execute(select(groups.c.external_id, groups.c.id)).all())
    gid, done_gid = ids[str(CHAT)], ids[str(CHAT - 1)]
    campaign = fission.do_create_campaign(
        conn, actor=SYSTEM, name="邀 2 人领资料", group_ids=[gid], account=bot["bot_id"],
        stages=[Stage(2, "资料包", 10)], completers_group_id=done_gid, now=tg_runtime.now())
    mine = fission.do_join(tg_runtime.uow, actor=SYSTEM, adapter_for=tg_runtime.adapter,
                           campaign_id=campaign["id"],
                           member_id=member_id_by_number(conn, 10001), now=tg_runtime.now())
    tg.join(token, CHAT, 601, "Amy", link_name=mine["code"])
    tg.join(token, CHAT, 602, "Ben", link_name=mine["code"])
    pump(tg_runtime, bot["bot_id"])
    assert settle(tg_runtime) == 2
    tg.fail("createChatInviteLink", 400, "Bad Request: not enough rights")  # Amy's

    # Amy's code is refused, Ben's is made; the completers' link is refused too
    assert follow_up(tg_runtime) == 3
    assert follow_up(tg_runtime) == 0  # nothing is done twice
    failed = conn.execute(select(audit_log.c.detail).where(
        audit_log.c.action == "fission.welcome_failed")).scalars().all()
    assert [d["member"] for d in failed] == [member_id_by_number(conn, 10002)]
    assert "not enough rights" in failed[0]["error"]
    ben = fission._participant(conn, campaign["id"], member_id_by_number(conn, 10003))
    assert ben is not None and ben["link"].startswith("https://t.me/+")
    welcome = [c for c in tg.called("sendMessage") if ben["link"] in c["text"]]
    assert len(welcome) == 1 and welcome[0]["chat_id"] == str(CHAT)
    # no picture on Telegram: the poster's address follows the welcome
    assert "你的专属海报：https://qy.example/fission/p/" in welcome[0]["text"]
    assert not tg.called("sendPhoto")
    private = [c["text"] for c in tg.called("sendMessage") if str(c["chat_id"]) == "501"]
    assert len(private) == 1 and "https://qy.example/claim/" in private[0]
    (reward,) = fission.list_rewards(conn, actor=SYSTEM, campaign_id=campaign["id"])
    assert reward["claim_send"] == "delivered"
    (task,) = conn.execute(select(staff_tasks.c.title)).scalars().all()
    assert task == "邀请 小 王 进完成者群「完成者群」"


def test_a_claim_link_that_cannot_go_privately_says_so(
        conn: Connection, tg_runtime: Runtime, tg: FakeTelegram) -> None:
    """The completer never started the team's bot: Telegram refuses the private message,
    and the rewards list says the link must be sent by hand (it does not claim it went)."""
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    tg.join(token, CHAT, 501, "小 王")
    pump(tg_runtime, bot["bot_id"])
    gid = conn.execute(select(groups.c.id)).scalar_one()
    campaign = fission.do_create_campaign(
        conn, actor=SYSTEM, name="邀 1 人领资料", group_ids=[gid], account=bot["bot_id"],
        stages=[Stage(1, "资料包", 10)], enrol_newcomers=False, now=tg_runtime.now())
    mine = fission.do_join(tg_runtime.uow, actor=SYSTEM, adapter_for=tg_runtime.adapter,
                           campaign_id=campaign["id"],
                           member_id=member_id_by_number(conn, 10001), now=tg_runtime.now())
    tg.join(token, CHAT, 601, "Amy", link_name=mine["code"])
    pump(tg_runtime, bot["bot_id"])
    settle(tg_runtime)
    follow_up(tg_runtime)
    (reward,) = fission.list_rewards(conn, actor=SYSTEM, campaign_id=campaign["id"])
    assert reward["claim_sent_at"] is not None and reward["claim_send"] == "dead"
