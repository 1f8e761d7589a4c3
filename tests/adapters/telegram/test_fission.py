"""A referral campaign in a Telegram group, against the fake Bot API: a participant's code
is a named invite link, joins through it are credited by the link's name, and the bot tells
the inviter their progress in the group."""

from __future__ import annotations

import random

from sqlalchemy import Connection, select

from qunyun.adapters.platforms.telegram.fake import FakeTelegram
from qunyun.adapters.storage.tables import groups
from qunyun.bootstrap import Runtime
from qunyun.domain.fission import Stage
from qunyun.services import fission
from qunyun.services import outbox as outbox_service
from qunyun.services.members import member_id_by_number
from qunyun.services.users import SYSTEM
from tests.adapters.telegram.conftest import CHAT
from tests.adapters.telegram.test_connector import connect, pump


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
    tg.join(token, CHAT, 602, "Ben", link_name=mine["code"])
    tg.join(token, CHAT, 603, "路人", link_name="海报A")  # another channel: not theirs
    pump(tg_runtime, bot["bot_id"])
    for _ in range(2):
        outbox_service.deliver_due(tg_runtime.uow, adapters=tg_runtime.adapters,
                                   limiter=tg_runtime.limiter, worker_id="w",
                                   policy=tg_runtime.policy, rng=random.Random(1))
    told = [c["text"] for c in tg.called("sendMessage") if "tg://user?id=501" in c["text"]]
    assert any("已有效邀请 1 人" in t for t in told), told
    assert any("恭喜完成「资料包」任务" in t for t in told), told
    report = fission.report(conn, actor=SYSTEM, campaign_id=campaign["id"],
                            tz=tg_runtime.settings.tz)
    assert (report["valid_invites"], report["completed"]) == (2, 1)
