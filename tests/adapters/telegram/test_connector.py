"""The Telegram connector against a fake Bot API over HTTP: connecting a bot, polling and the
webhook into the raw inbox, updates into events, and actions performed by the bot."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select

from qunyun.adapters.platforms.base import Delivery, PermanentSendError, TransientSendError
from qunyun.adapters.platforms.telegram.adapter import TelegramAdapter
from qunyun.adapters.platforms.telegram.fake import FakeTelegram
from qunyun.adapters.storage.tables import (
    audit_log,
    groups,
    memberships,
    messages,
    raw_inbox,
    telegram_bots,
    telegram_chats,
)
from qunyun.bootstrap import Runtime, telegram_clients
from qunyun.domain.actions import RemoveMember, SendText
from qunyun.services import telegram
from qunyun.services.errors import InvalidInput
from qunyun.services.users import SYSTEM
from tests.adapters.telegram.conftest import BOT, CHAT


def connect(rt: Runtime, tg: FakeTelegram, **kw: Any) -> tuple[str, dict[str, Any]]:
    token = tg.add_bot()
    bot = telegram.do_add_bot(rt.uow, actor=SYSTEM, box=rt.box, clients=telegram_clients(rt),
                              token=token, now=rt.now(), **kw)
    return token, bot


def pump(rt: Runtime, bot_id: str) -> telegram.ProcessStats:
    telegram.poll_once(rt.uow, box=rt.box, clients=telegram_clients(rt), bot_id=bot_id,
                       now=rt.now())
    adapter = rt.adapters["telegram"]
    assert isinstance(adapter, TelegramAdapter)
    return telegram.process_updates(rt.uow, adapter=adapter, config=rt.ingest_config,
                                    now=rt.now())


def test_a_bad_token_stores_nothing_and_a_good_one_is_sealed(
        conn: Connection, tg_runtime: Runtime, tg: FakeTelegram) -> None:
    with pytest.raises(InvalidInput, match="token"):
        telegram.do_add_bot(tg_runtime.uow, actor=SYSTEM, box=tg_runtime.box,
                            clients=telegram_clients(tg_runtime), token="not a token",
                            now=tg_runtime.now())
    with pytest.raises(InvalidInput, match="Unauthorized"):
        telegram.do_add_bot(tg_runtime.uow, actor=SYSTEM, box=tg_runtime.box,
                            clients=telegram_clients(tg_runtime),
                            token="123456:" + "A" * 35, now=tg_runtime.now())
    assert conn.execute(select(func.count()).select_from(telegram_bots)).scalar() == 0
    token, bot = connect(tg_runtime, tg)
    assert bot["username"] == "qunyun_test_bot" and bot["mode"] == "polling"
    stored = conn.execute(select(telegram_bots.c.token, telegram_bots.c.secret)).one()
    assert token not in stored.token and tg.called("deleteWebhook")
    with pytest.raises(InvalidInput, match="https"):
        connect(tg_runtime, tg, webhook_url="http://example.com")


def test_polled_updates_become_events_once(conn: Connection, tg_runtime: Runtime,
                                           tg: FakeTelegram) -> None:
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT, rights={"can_delete_messages": True,
                                      "can_restrict_members": True})
    tg.join(token, CHAT, 501, "小 王", link_name="海报A")
    tg.join(token, CHAT, 502, "Lily", by=(501, "小 王"))
    tg.message(token, CHAT, 501, "小 王", "看看 <b>这个</b>",
               entities=[{"type": "text_link", "offset": 0, "length": 2,
                          "url": "https://spam.example"}])
    tg.message(token, CHAT, 777, "Alice", "hi", chat={"id": 42, "type": "private"})
    tg.leave(token, CHAT, 502, "Lily", by=(1, "Owner"))
    stats = pump(tg_runtime, bot["bot_id"])
    assert (stats.processed, stats.failed) == (6, 0)
    # the private message is read (for the entry gate), never stored as group talk
    assert stats.skipped == {} and stats.events == 6
    group = conn.execute(select(groups).where(groups.c.platform == "telegram")).mappings().one()
    assert group["external_id"] == str(CHAT) and group["name"] == '家长交流群"1"'
    joins = {r.channel: r for r in conn.execute(
        select(memberships).where(memberships.c.group_id == group["id"]))}
    assert set(joins) == {"海报A", ""} and joins[""].inviter_member_id is not None
    assert joins[""].left_at is not None and joins[""].leave_scene == "removed"
    text = conn.execute(select(messages.c.text, messages.c.message_type)).one()
    assert text.text == "看看 <b>这个</b> https://spam.example" and text.message_type == "link"
    chat = conn.execute(select(telegram_chats)).mappings().one()
    assert chat["status"] == "administrator" and chat["rights"]["can_restrict_members"]
    assert telegram.list_chats(conn, actor=SYSTEM)[0]["missing"] == [
        "can_invite_users", "can_pin_messages", "can_change_info"]
    # the offset moved on: nothing is asked twice; a webhook retry of a stored update is
    # one row, and processing it again changes nothing
    assert pump(tg_runtime, bot["bot_id"]).processed == 0
    rows = conn.execute(select(func.count()).select_from(raw_inbox)).scalar()
    body = conn.execute(select(raw_inbox.c.body).limit(1)).scalar_one()
    assert telegram.store_update(conn, bot_id=bot["bot_id"], body=body,
                                 now=tg_runtime.now()) is None
    assert conn.execute(select(func.count()).select_from(raw_inbox)).scalar() == rows


def test_a_broken_update_fails_alone(conn: Connection, tg_runtime: Runtime,
                                     tg: FakeTelegram) -> None:
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    telegram.store_update(conn, bot_id=bot["bot_id"], now=tg_runtime.now(),
                          body=json.dumps({"update_id": 99, "message": {"chat": {
                              "id": CHAT, "type": "supergroup"}, "date": "yesterday"}}))
    stats = pump(tg_runtime, bot["bot_id"])
    assert (stats.processed, stats.failed) == (1, 1)
    error = conn.execute(select(raw_inbox.c.error).where(raw_inbox.c.status == "failed")
                         ).scalar_one()
    assert "message.date is not a Unix time" in error


def _delivery(action: Any, **names: str) -> Delivery:
    return Delivery(idempotency_key="k1", action=action, chat_external_id=str(CHAT),
                    member_external_ids={1: "501"}, member_names={1: names.get("name", "小王")})


def test_the_bot_acts_and_errors_map_to_retry_rules(conn: Connection, tg_runtime: Runtime,
                                                    tg: FakeTelegram) -> None:
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT, rights={"can_restrict_members": True})
    pump(tg_runtime, bot["bot_id"])
    adapter = tg_runtime.adapters["telegram"]
    receipt = adapter.send(_delivery(SendText(group_id=1, text="欢迎 @<小王> 入群 & 打卡",
                                              mention_member_ids=(1,)), name="<小王>"))
    assert receipt.platform_message_id
    sent = tg.called("sendMessage")[-1]
    assert sent["parse_mode"] == "HTML"
    assert sent["text"] == ('欢迎 <a href="tg://user?id=501">&lt;小王&gt;</a> 入群 &amp; 打卡')
    adapter.send(_delivery(RemoveMember(group_id=1, member_id=1, reason="广告")))
    assert [c["user_id"] for c in tg.called("banChatMember")] == [501]
    assert tg.called("unbanChatMember")  # a kick: they may come back later
    tg.fail("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
    with pytest.raises(TransientSendError) as slow:
        adapter.send(_delivery(SendText(group_id=1, text="hi")))
    assert slow.value.retry_after == 7
    tg.fail("sendMessage", 403, "Forbidden: bot was kicked from the supergroup chat")
    with pytest.raises(PermanentSendError, match="kicked"):
        adapter.send(_delivery(SendText(group_id=1, text="hi")))
    with pytest.raises(PermanentSendError, match="not enough rights"):
        adapter.send(_delivery(__import__("qunyun.domain.actions", fromlist=["RenameGroup"])
                               .RenameGroup(group_id=1, new_name="新群名")))
    with pytest.raises(PermanentSendError, match="no bot"):
        adapter.send(Delivery(idempotency_key="k2", action=SendText(group_id=1, text="x"),
                              chat_external_id="-100999"))


def test_webhook_checks_the_secret_and_stores_once(conn: Connection, tg_runtime: Runtime,
                                                   tg: FakeTelegram) -> None:
    from qunyun.web.app import create_app

    _token, bot = connect(tg_runtime, tg, secret="s3cret-Token_1")
    client = TestClient(create_app(tg_runtime))
    path = f"/callbacks/telegram/{bot['bot_id']}"
    update = {"update_id": 5, "message": {"message_id": 1, "date": 1764800000, "text": "hi",
                                          "chat": {"id": CHAT, "type": "supergroup"},
                                          "from": {"id": 501, "first_name": "王"}}}
    before = conn.execute(select(func.count()).select_from(raw_inbox)).scalar()
    assert client.post(path, json=update).status_code == 403
    assert client.post(path, json=update, headers={
        "X-Telegram-Bot-Api-Secret-Token": "wrong"}).status_code == 403
    assert client.post("/callbacks/telegram/123", json=update).status_code == 404
    assert conn.execute(select(func.count()).select_from(raw_inbox)).scalar() == before
    good = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-Token_1"}
    assert client.post(path, content=b"{not json", headers=good).status_code == 400
    assert client.post(path, json={"update_id": True}, headers=good).status_code == 400
    assert client.post(path, json=update, headers=good).status_code == 200
    assert client.post(path, json=update, headers=good).status_code == 200  # a retry
    assert conn.execute(select(func.count()).select_from(raw_inbox)).scalar() == before + 1
    assert client.post(path, content=b"x" * 300_000, headers=good).status_code == 413
    assert conn.execute(select(func.count()).select_from(audit_log).where(
        audit_log.c.action == "telegram.bot_add")).scalar() == 1


def test_rules_act_by_themselves_in_a_telegram_group(conn: Connection, tg_runtime: Runtime,
                                                     tg: FakeTelegram) -> None:
    """What becomes a staff task on WeCom happens on Telegram: the check-in is answered in
    the group and the advertiser is removed by the bot, through the outbox."""
    import random

    from qunyun.services import automation
    from qunyun.services import outbox as outbox_service

    automation.do_update_settings(conn, actor=SYSTEM, section="checkin",
                                  values={"enabled": True})
    automation.do_update_settings(conn, actor=SYSTEM, section="moderation",
                                  values={"enabled": True, "escalation": ["remove"]})
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    tg.join(token, CHAT, 501, "小 王", link_name="海报A")
    checked = tg.message(token, CHAT, 501, "小 王", "打卡")["message"]
    tg.join(token, CHAT, 502, "推广 号")
    ad = tg.message(token, CHAT, 502, "推广 号",
                    "兼职刷单日结300，加V：abc12345 联系电话 13812345678")["message"]
    assert pump(tg_runtime, bot["bot_id"]).failed == 0
    for _ in range(3):
        outbox_service.deliver_due(tg_runtime.uow, adapters=tg_runtime.adapters,
                                   limiter=tg_runtime.limiter, worker_id="w",
                                   policy=tg_runtime.policy, rng=random.Random(1))
    texts = [c["text"] for c in tg.called("sendMessage")]
    assert any("打卡" in t and 'tg://user?id=501' in t for t in texts), texts
    # the check-in is answered as a reply to the check-in message
    (reply,) = [c for c in tg.called("sendMessage") if "打卡" in c["text"]]
    assert reply["reply_parameters"]["message_id"] == checked["message_id"]
    assert [c["user_id"] for c in tg.called("banChatMember")] == [502]
    # the ad itself is deleted too
    assert [c["message_id"] for c in tg.called("deleteMessage")] == [ad["message_id"]]


def test_page_and_api_show_bots_and_missing_rights(conn: Connection, tg_runtime: Runtime,
                                                   tg: FakeTelegram,
                                                   staff: dict[str, str]) -> None:
    from qunyun.web.app import create_app
    from tests.web.conftest import login

    client = TestClient(create_app(tg_runtime), follow_redirects=False)
    client.headers["X-CSRF-Token"] = login(client, staff["admin"])
    assert "还没有连接机器人" in client.get("/telegram").text
    bad = client.post("/api/v1/telegram/bots", json={"token": "1234:nope"})
    assert bad.status_code == 422 and "BotFather" in bad.json()["message"]
    token = tg.add_bot()
    made = client.post("/api/v1/telegram/bots", json={"token": token})
    assert made.status_code == 201 and token not in made.text
    tg.bot_added(token, CHAT, rights={"can_delete_messages": True})
    pump(tg_runtime, made.json()["bot_id"])
    page = client.get("/telegram").text
    assert "@qunyun_test_bot" in page and '家长交流群&#34;1&#34;' in page
    assert "禁言和封禁成员" in page and "轮询" in page
    (chat,) = client.get("/api/v1/telegram/chats").json()
    assert "can_restrict_members" in chat["missing"]
    tg.chats[CHAT].bot_rights[BOT]["can_invite_users"] = True
    made_link = client.post("/telegram/links", data={
        "csrf_token": client.headers["X-CSRF-Token"], "bot_id": made.json()["bot_id"],
        "chat_id": str(CHAT), "channel": "海报A"})
    assert made_link.status_code == 303
    tg.join(token, CHAT, 601, "新 人", link_name="海报A")
    pump(tg_runtime, made.json()["bot_id"])
    links = client.get("/telegram").text
    assert "https://t.me/+fake" in links and "海报A" in links
    assert '<td class="num">1</td></tr>' in links.split('id="links-table"')[1]
    bot_id = made.json()["bot_id"]
    hooked = client.put(f"/api/v1/telegram/bots/{bot_id}/webhook",
                        json={"url": "https://q.example.com"})
    assert hooked.status_code == 200 and hooked.json()["mode"] == "webhook"
    assert client.put(f"/api/v1/telegram/bots/{bot_id}/webhook",
                      json={"url": "ftp://x"}).status_code == 422
    assert client.put("/api/v1/telegram/bots/999/webhook",
                      json={"url": "https://q.example.com"}).status_code == 404
    assert "改为轮询" in client.get("/telegram").text
    back = client.post(f"/telegram/bots/{bot_id}/webhook", data={
        "csrf_token": client.headers["X-CSRF-Token"], "webhook_url": ""})
    assert back.status_code == 303
    assert client.get("/api/v1/telegram/bots").json()[0]["mode"] == "polling"
    assert client.delete(f"/api/v1/telegram/bots/{made.json()['bot_id']}").status_code == 204
    assert client.get("/api/v1/telegram/bots").json() == []


def test_a_missing_right_becomes_a_staff_task_naming_it(conn: Connection, tg_runtime: Runtime,
                                                        tg: FakeTelegram) -> None:
    import random

    from qunyun.adapters.storage.tables import outbox, staff_tasks
    from qunyun.clock import utcnow
    from qunyun.domain.actions import RenameGroup
    from qunyun.i18n import spoken
    from qunyun.services import outbox as outbox_service
    from qunyun.services.tasks import reason_words

    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT, rights={"can_delete_messages": True})
    pump(tg_runtime, bot["bot_id"])
    gid = conn.execute(select(groups.c.id).where(groups.c.external_id == str(CHAT))).scalar_one()
    (oid,) = outbox_service.enqueue(conn, platform="telegram",
                                    actions=[("manual", RenameGroup(group_id=gid,
                                                                    new_name="二期家长群"))],
                                    capabilities=tg_runtime.capabilities("telegram"),
                                    key_prefix="rename", now=utcnow())
    outbox_service.deliver_due(tg_runtime.uow, adapters=tg_runtime.adapters,
                               limiter=tg_runtime.limiter, worker_id="w",
                               policy=tg_runtime.policy, rng=random.Random(1))
    row = conn.execute(select(outbox).where(outbox.c.id == oid)).mappings().one()
    assert row["status"] == "staff_task" and "修改群信息" in row["last_error"]
    task = conn.execute(select(staff_tasks).where(staff_tasks.c.id == row["staff_task_id"])
                        ).mappings().one()
    assert task["group_id"] == gid and task["status"] == "open"
    said = spoken(reason_words(dict(task)), "en")
    assert said.startswith("The bot lacks the “change group info” right"), said


def test_a_group_upgraded_to_a_supergroup_stays_one_group(conn: Connection,
                                                          tg_runtime: Runtime,
                                                          tg: FakeTelegram) -> None:
    old = -4001
    tg.add_chat(old, "小群", type_="group")
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, old)
    tg.join(token, old, 501, "小 王")
    tg.message(token, old, 501, "小 王", "hi", migrate_to_chat_id=CHAT)
    tg.message(token, CHAT, 501, "小 王", "supergroup now")
    assert pump(tg_runtime, bot["bot_id"]).failed == 0
    rows = conn.execute(select(groups.c.id, groups.c.external_id)
                        .where(groups.c.platform == "telegram")).all()
    assert [r.external_id for r in rows] == [str(CHAT)]
    said = conn.execute(select(messages.c.group_id, messages.c.text)).all()
    assert [(g, t) for g, t in said] == [(rows[0].id, "supergroup now")]
    assert conn.execute(select(func.count()).select_from(memberships).where(
        memberships.c.group_id == rows[0].id, memberships.c.left_at.is_(None))).scalar() == 1
    assert conn.execute(select(telegram_chats.c.chat_id)).scalar_one() == str(CHAT)


def test_a_join_code_is_a_named_invite_link_that_credits_its_channel(
        conn: Connection, tg_runtime: Runtime, tg: FakeTelegram) -> None:
    from qunyun.services import join_codes

    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    pump(tg_runtime, bot["bot_id"])
    gid = conn.execute(select(groups.c.id).where(groups.c.external_id == str(CHAT))).scalar_one()
    code = join_codes.do_create_join_code(tg_runtime.uow, actor=SYSTEM,
                                          adapter=tg_runtime.adapters["telegram"],
                                          account=bot["bot_id"], channel="海报A", chats=[gid],
                                          capacity=500)
    assert code["qr_code"].startswith("https://t.me/+") and tg.called(
        "createChatInviteLink")[0]["name"] == "海报A"
    tg.join(token, CHAT, 601, "新 人", link_name="海报A")
    tg.join(token, CHAT, 602, "路 人")  # a public group's Join button: no link, organic
    pump(tg_runtime, bot["bot_id"])
    channels = sorted(r.channel for r in conn.execute(
        select(memberships.c.channel).where(memberships.c.group_id == gid)))
    assert channels == ["", "海报A"]
    join_codes.do_delete_join_code(tg_runtime.uow, actor=SYSTEM,
                                   adapters=tg_runtime.adapters, code_id=code["id"])
    assert tg.called("revokeChatInviteLink")
    with pytest.raises(Exception, match="not found"):
        join_codes.do_create_join_code(tg_runtime.uow, actor=SYSTEM,
                                       adapter=tg_runtime.adapters["telegram"],
                                       account="999", channel="海报B", chats=[gid],
                                       capacity=500)


def test_a_member_blacklisted_anywhere_is_banned_on_joining_another_group(
        conn: Connection, tg_runtime: Runtime, tg: FakeTelegram) -> None:
    """The team's blacklist is its ban list across groups (Telegram admins call it a
    federation): the bot bans, and does not lift the ban as it does for a kick."""
    import random

    from qunyun.services import blacklist
    from qunyun.services import outbox as outbox_service
    from qunyun.services.members import member_id_by_number

    other = -1009
    tg.add_chat(other, "二群")
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    tg.bot_added(token, other)
    tg.join(token, other, 700, "广告 哥")
    pump(tg_runtime, bot["bot_id"])
    blacklist.do_blacklist(conn, actor=SYSTEM, member_id=member_id_by_number(conn, 10001),
                           reason="发广告", capabilities=tg_runtime.capabilities)
    tg.join(token, CHAT, 700, "广告 哥")
    pump(tg_runtime, bot["bot_id"])
    for _ in range(2):
        outbox_service.deliver_due(tg_runtime.uow, adapters=tg_runtime.adapters,
                                   limiter=tg_runtime.limiter, worker_id="w",
                                   policy=tg_runtime.policy, rng=random.Random(1))
    banned = {(c["chat_id"], c["user_id"]) for c in tg.called("banChatMember")}
    assert (str(CHAT), 700) in banned and (str(-1009), 700) in banned  # removed everywhere
    assert not tg.called("unbanChatMember")


def test_webhook_secrets_are_kept_but_a_new_secret_is_honoured_at_once() -> None:
    now = [100.0]
    reads: list[str] = []
    current = {"7": telegram.BotSecrets("7", "t", "old")}

    def load(bot_id: str) -> telegram.BotSecrets | None:
        reads.append(bot_id)
        return current.get(bot_id)

    kept = telegram.WebhookSecrets(load, ttl=10, min_reload=1, clock=lambda: now[0])
    assert kept.check("7", "old") is True and kept.quick("7", "old")
    assert kept.check("7", "old") is True and reads == ["7"]  # kept, not read again
    current["7"] = telegram.BotSecrets("7", "t", "new")
    now[0] += 2
    assert kept.check("7", "new") is True and len(reads) == 2  # re-read on a refusal
    assert kept.check("7", "old") is False and len(reads) == 2  # not more than once a second
    assert kept.check("8", "x") is None and kept.check("8", "x") is None
    assert reads.count("8") == 1  # an unknown bot is remembered as unknown


def test_moderation_can_mute_instead_of_removing(conn: Connection, tg_runtime: Runtime,
                                                 tg: FakeTelegram) -> None:
    """warn → mute → remove: the mute step keeps the member from posting for the set time."""
    import random
    import time

    from qunyun.services import automation
    from qunyun.services import outbox as outbox_service

    automation.do_update_settings(conn, actor=SYSTEM, section="moderation", values={
        "enabled": True, "escalation": ["mute", "remove"], "mute_minutes": 30})
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    tg.join(token, CHAT, 502, "推广 号")
    tg.message(token, CHAT, 502, "推广 号", "兼职刷单日结300，加V：abc12345 联系电话 13812345678")
    pump(tg_runtime, bot["bot_id"])
    outbox_service.deliver_due(tg_runtime.uow, adapters=tg_runtime.adapters,
                               limiter=tg_runtime.limiter, worker_id="w",
                               policy=tg_runtime.policy, rng=random.Random(1))
    (muted,) = tg.called("restrictChatMember")
    assert muted["user_id"] == 502 and muted["permissions"]["can_send_messages"] is False
    assert abs(muted["until_date"] - (time.time() + 1800)) < 120
    assert not tg.called("banChatMember")


def test_sends_keep_to_telegrams_own_limits(conn: Connection, tg_runtime: Runtime,
                                            tg: FakeTelegram) -> None:
    """20 a minute in one group, whatever the team's (looser) settings say: the rest wait."""
    import random
    from dataclasses import replace

    from qunyun.clock import utcnow
    from qunyun.services import outbox as outbox_service

    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    pump(tg_runtime, bot["bot_id"])
    gid = conn.execute(select(groups.c.id).where(groups.c.external_id == str(CHAT))).scalar_one()
    tg_runtime.policy = replace(tg_runtime.policy, platform_per_second=1e6,
                                group_per_minute=1e6)
    outbox_service.enqueue(conn, platform="telegram",
                           actions=[("manual", SendText(group_id=gid, text=f"第 {i} 条"))
                                    for i in range(30)],
                           capabilities=tg_runtime.capabilities("telegram"),
                           key_prefix="burst", now=utcnow())
    stats = outbox_service.deliver_due(tg_runtime.uow, adapters=tg_runtime.adapters,
                                       limiter=tg_runtime.limiter, worker_id="w",
                                       policy=tg_runtime.policy, rng=random.Random(1))
    assert stats.delivered == 5 and stats.deferred == 25  # a burst of 20/4, then 1 per 3 s
    assert len(tg.called("sendMessage")) == 5


def test_a_message_edited_into_an_ad_is_moderated_not_counted_twice(
        conn: Connection, tg_runtime: Runtime, tg: FakeTelegram) -> None:
    import random

    from qunyun.adapters.storage.tables import moderation_decisions
    from qunyun.services import automation
    from qunyun.services import outbox as outbox_service

    automation.do_update_settings(conn, actor=SYSTEM, section="moderation",
                                  values={"enabled": True, "escalation": ["remove"]})
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    first = tg.message(token, CHAT, 502, "新 人", "大家好")
    body = dict(first["message"])
    body.update(text="兼职刷单日结300，加V：abc12345 联系电话 13812345678",
                edit_date=body["date"] + 60)
    tg.bots[token].updates.append({"update_id": first["update_id"] + 1,
                                   "edited_message": body})
    assert pump(tg_runtime, bot["bot_id"]).failed == 0
    (stored,) = conn.execute(select(messages.c.text)).scalars().all()  # one message, edited
    assert stored.startswith("兼职刷单")
    (decision,) = conn.execute(select(moderation_decisions.c.action)).scalars().all()
    assert decision == "remove"
    outbox_service.deliver_due(tg_runtime.uow, adapters=tg_runtime.adapters,
                               limiter=tg_runtime.limiter, worker_id="w",
                               policy=tg_runtime.policy, rng=random.Random(1))
    assert [c["user_id"] for c in tg.called("banChatMember")] == [502]


def test_private_messages_reach_only_members_who_started_the_bot(
        conn: Connection, tg_runtime: Runtime, tg: FakeTelegram) -> None:
    from qunyun.domain.actions import SendPrivate

    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    tg.start(token, 501, "小 王")
    stats = pump(tg_runtime, bot["bot_id"])
    assert stats.events == 2 and not stats.skipped  # read, but it is not group talk
    assert conn.execute(select(func.count()).select_from(messages)).scalar() == 0
    adapter = tg_runtime.adapters["telegram"]
    started = Delivery(idempotency_key="p1", chat_external_id=str(CHAT),
                       action=SendPrivate(group_id=1, member_id=1, text="<课程表> 在这里"),
                       member_external_ids={1: "501"})
    assert adapter.send(started).platform_message_id
    assert tg.called("sendMessage")[-1] == {
        "chat_id": "501", "text": "&lt;课程表&gt; 在这里", "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True}}
    stranger = Delivery(idempotency_key="p2", chat_external_id=str(CHAT),
                        action=SendPrivate(group_id=1, member_id=2, text="hi"),
                        member_external_ids={2: "777"})
    with pytest.raises(PermanentSendError, match="has not started any of the team's bots"):
        adapter.send(stranger)


def test_a_private_message_goes_through_the_team_bot_the_member_wrote_to(
        conn: Connection, tg_runtime: Runtime, tg: FakeTelegram) -> None:
    """The group's bot is not the one the member started (a team runs a customer-service
    bot beside the group bots): the message goes through the one they wrote to, and no
    longer once they blocked it."""
    from qunyun.domain.actions import SendPrivate

    group_token, group_bot = connect(tg_runtime, tg)
    service_token = tg.add_bot(7000002, "qunyun_service_bot")
    service = telegram.do_add_bot(tg_runtime.uow, actor=SYSTEM, box=tg_runtime.box,
                                  clients=telegram_clients(tg_runtime), token=service_token,
                                  now=tg_runtime.now())
    tg.bot_added(group_token, CHAT)
    tg.message(group_token, CHAT, 501, "小 王", "你好")
    tg.start(service_token, 501, "小 王")
    pump(tg_runtime, group_bot["bot_id"])
    pump(tg_runtime, service["bot_id"])
    adapter = tg_runtime.adapters["telegram"]
    note = Delivery(idempotency_key="p1", chat_external_id=str(CHAT),
                    action=SendPrivate(group_id=1, member_id=1, text="课程表"),
                    member_external_ids={1: "501"})
    assert adapter.send(note).platform_message_id
    assert [b for b, m, p in tg.calls if m == "sendMessage"] == [service["bot_id"]]
    tg.block(service_token, 501, "小 王")
    pump(tg_runtime, service["bot_id"])
    with pytest.raises(PermanentSendError, match="has not started any"):
        adapter.send(note)
    assert [b for b, m, p in tg.calls if m == "sendMessage"] == [
        service["bot_id"], group_bot["bot_id"]]


def test_a_mute_overturned_in_the_moderation_log_is_lifted(conn: Connection,
                                                          tg_runtime: Runtime,
                                                          tg: FakeTelegram,
                                                          staff: dict[str, str]) -> None:
    """A person overturns a wrong mute on the moderation log page: the bot lifts it."""
    import random

    from qunyun.adapters.storage.tables import moderation_decisions
    from qunyun.services import automation
    from qunyun.services import outbox as outbox_service
    from qunyun.web.app import create_app
    from tests.web.conftest import login

    def deliver() -> None:
        for _ in range(2):
            outbox_service.deliver_due(tg_runtime.uow, adapters=tg_runtime.adapters,
                                       limiter=tg_runtime.limiter, worker_id="w",
                                       policy=tg_runtime.policy, rng=random.Random(1))

    automation.do_update_settings(conn, actor=SYSTEM, section="moderation", values={
        "enabled": True, "escalation": ["mute"], "mute_minutes": 60})
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    tg.join(token, CHAT, 502, "李 老师")
    tg.message(token, CHAT, 502, "李 老师", "兼职刷单日结300，加V：abc12345 联系电话 13812345678")
    pump(tg_runtime, bot["bot_id"])
    deliver()
    (muted,) = tg.called("restrictChatMember")
    assert muted["permissions"]["can_send_messages"] is False
    decision_id = conn.execute(select(moderation_decisions.c.id)).scalar_one()
    client = TestClient(create_app(tg_runtime), follow_redirects=False)
    csrf = login(client, staff["operator"])
    answer = client.post(f"/automation/moderation/{decision_id}/review",
                         data={"csrf_token": csrf, "decision": "overturn"})
    assert answer.status_code == 303, answer.text
    deliver()
    lifted = tg.called("restrictChatMember")[1:]
    assert [(c["user_id"], c["permissions"]["can_send_messages"]) for c in lifted] == [
        (502, True)]
    assert not tg.called("banChatMember")  # lifted, nobody removed


def test_a_newcomer_advertising_in_their_name_is_removed_on_joining(
        conn: Connection, tg_runtime: Runtime, tg: FakeTelegram) -> None:
    """Raid accounts carry their ad in their names and a t.me link in their posts: a contact
    in the name removes them on joining, ungreeted; an ordinary name is greeted."""
    import random

    from qunyun.adapters.storage.tables import moderation_decisions
    from qunyun.services import automation
    from qunyun.services import outbox as outbox_service

    automation.do_update_settings(conn, actor=SYSTEM, section="moderation",
                                  values={"enabled": True, "escalation": ["remove"]})
    automation.do_update_settings(conn, actor=SYSTEM, section="welcome",
                                  values={"enabled": True, "batch_seconds": 0})
    from qunyun.services import groups as groups_service

    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    pump(tg_runtime, bot["bot_id"])
    gid = conn.execute(select(groups.c.id)).scalar_one()
    groups_service.do_update_group(conn, actor=SYSTEM, group_id=gid, now=tg_runtime.now(),
                                   changes={"welcome_template": "欢迎 @{name}！"})
    tg.join(token, CHAT, 801, "免费资料 @free_vip_bot")
    tg.join(token, CHAT, 802, "小 王")
    tg.join(token, CHAT, 803, "Amy")
    tg.message(token, CHAT, 803, "Amy", "进群领福利 t.me/+AbCdEf123")
    pump(tg_runtime, bot["bot_id"])
    for _ in range(2):
        outbox_service.deliver_due(tg_runtime.uow, adapters=tg_runtime.adapters,
                                   limiter=tg_runtime.limiter, worker_id="w",
                                   policy=tg_runtime.policy, rng=random.Random(1))
    assert sorted(c["user_id"] for c in tg.called("banChatMember")) == [801, 803]
    greetings = " ".join(c["text"] for c in tg.called("sendMessage"))
    assert "tg://user?id=802" in greetings and "tg://user?id=801" not in greetings
    reasons = [r for (r,) in conn.execute(select(moderation_decisions.c.reasons)
                                          .order_by(moderation_decisions.c.id))]
    assert "昵称：免费资料 @free_vip_bot" in reasons[0] and "含链接" in reasons[1]


def test_a_join_flood_is_one_task_for_the_team(conn: Connection, tg_runtime: Runtime,
                                               tg: FakeTelegram) -> None:
    """Accounts pouring in (a raid, or a poster that took off): one task when the count
    reaches the limit, not one per newcomer; nobody is treated differently for it."""
    from qunyun.adapters.storage.tables import staff_tasks
    from qunyun.services import automation

    automation.do_update_settings(conn, actor=SYSTEM, section="moderation", values={
        "enabled": True, "join_flood_joins": 5, "join_flood_seconds": 60})
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    for uid in range(900, 904):  # four: not yet a flood
        tg.join(token, CHAT, uid, f"新朋友{uid}")
    pump(tg_runtime, bot["bot_id"])
    assert conn.execute(select(func.count()).select_from(staff_tasks)).scalar_one() == 0
    for uid in range(904, 912):  # the fifth within a minute, and more after it
        tg.join(token, CHAT, uid, f"新朋友{uid}")
    pump(tg_runtime, bot["bot_id"])
    (title,) = conn.execute(select(staff_tasks.c.title)).scalars().all()
    assert title.startswith("入群激增") and "5 人加入" in title


def test_a_broadcast_marked_pin_is_pinned_where_the_bot_may(conn: Connection,
                                                           tg_runtime: Runtime,
                                                           tg: FakeTelegram) -> None:
    """An announcement pinned in each group once sent; where the bot lacks the pin right
    it is still sent, unpinned, and the receipt says why (never sent twice)."""
    import random

    from qunyun.adapters.storage.tables import outbox
    from qunyun.services import automation, broadcasts, schedules
    from qunyun.services import outbox as outbox_service

    other = -1009
    tg.add_chat(other, "二群")
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    tg.bot_added(token, other, rights={"can_delete_messages": True})
    pump(tg_runtime, bot["bot_id"])
    # sent at once whatever the wall clock says (the team's quiet hours would hold it)
    automation.do_update_settings(conn, actor=SYSTEM, section="broadcast",
                                  values={"quiet_hours": ""})
    made = broadcasts.do_create_broadcast(conn, actor=SYSTEM, name="直播预告",
                                          target={"all": True}, text="今晚 20:00 直播，准时见",
                                          pin=True)
    assert made["pin"] is True
    schedules.fire_due(tg_runtime.uow, config=tg_runtime.ingest_config)
    outbox_service.deliver_due(tg_runtime.uow, adapters=tg_runtime.adapters,
                               limiter=tg_runtime.limiter, worker_id="w",
                               policy=tg_runtime.policy, rng=random.Random(1))
    sent = {c["chat_id"]: c for c in tg.called("sendMessage")}
    assert set(sent) == {str(CHAT), str(other)}
    assert tg.chats[CHAT].pinned is not None and tg.chats[other].pinned is None
    receipts = {r.group_id: r.receipt for r in conn.execute(
        select(outbox.c.group_id, outbox.c.receipt, outbox.c.status))}
    assert sorted(r["pinned"] for r in receipts.values()) == [False, True]
    (unpinned,) = [r for r in receipts.values() if not r["pinned"]]
    assert "not enough rights" in unpinned["pin_error"]
    assert len(tg.called("sendMessage")) == 2  # the failed pin sent nothing again
