"""Every Telegram update fixture (an Update as the Bot API documents it, one per kind and
variant the parser handles or skips on purpose) and what it becomes: events, the
connector's follow-ups, and what is counted and skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qunyun.adapters.platforms.base import ParseResult
from qunyun.adapters.platforms.telegram import parse as tp
from qunyun.domain.events import (
    GroupRenamed,
    GroupUpdated,
    JoinRequested,
    MemberJoined,
    MemberLeft,
    MessageEdited,
    MessagePosted,
    PrivateMessageReceived,
)

FIXTURES = Path(tp.__file__).parent / "fixtures"
CHAT = "-1001234567890"
BOT = "7000001"


def load(name: str) -> ParseResult:
    update = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return tp.parse({"bot": BOT, "update": update})


def summary(result: ParseResult) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for e in result.events:
        match e:
            case MemberJoined():
                out.append(("joined", e.member.external_id, e.scene.value, e.channel,
                            e.inviter.external_id if e.inviter else ""))
            case MemberLeft():
                out.append(("left", e.member.external_id, e.scene.value,
                            e.by.external_id if e.by else ""))
            case MessagePosted():
                out.append(("message", e.sender.external_id, e.sender.kind, e.message_type,
                            e.text))
            case MessageEdited():
                out.append(("edited", e.sender.external_id, e.message_id, e.text))
            case GroupRenamed():
                out.append(("renamed", e.new_name))
            case GroupUpdated():
                out.append(("group", e.chat.external_id,
                            ",".join(a.external_id for a in e.admins_added),
                            ",".join(a.external_id for a in e.admins_removed)))
            case JoinRequested():
                out.append(("join_request", e.member.external_id, e.channel, e.bio))
            case PrivateMessageReceived():
                out.append(("private", e.sender.external_id, e.text))
            case _:
                out.append((e.kind,))
    return out


OPEN = {"kind": "private", "user": "501", "status": "open"}
# fixture → (events, follow-ups, skipped)
EXPECTED: dict[str, tuple[list[tuple[str, ...]], list[dict[str, Any]], dict[str, int]]] = {
    "message__text": ([("message", "501", "user", "text", "请问团购价格多少？")], [], {}),
    "message__text_link": ([("message", "501", "user", "link",
                             "看看这个 福利 https://spam.example/x")], [], {}),
    "message__url": ([("message", "501", "user", "link", "加群 t.me/joinchat/AAAA 领资料")],
                     [], {}),
    "message__photo_caption": ([("message", "501", "user", "image", "打卡 第3天")], [], {}),
    "message__sticker": ([("message", "501", "user", "sticker", "")], [], {}),
    "message__document": ([("message", "501", "user", "file", "")], [], {}),
    "message__voice": ([("message", "501", "user", "voice", "")], [], {}),
    "message__forward_channel": ([("message", "501", "user", "forward",
                                   "🔥 免费领取内部资料 t.me/free_vip")], [], {}),
    "message__sender_chat": ([("message", "-1009876543210", "chat", "text", "限时福利")],
                             [], {}),
    "message__basic_group": ([("message", "501", "user", "text", "收到")], [], {}),
    "message__new_chat_members": ([("joined", "502", "invite", "", "501"),
                                   ("joined", "503", "invite", "", "501")], [], {}),
    "message__left_chat_member_self": ([("left", "502", "left", "")], [], {}),
    "message__left_chat_member_removed": ([("left", "502", "removed", "1")], [], {}),
    "message__new_chat_title": ([("renamed", "二期家长群")], [], {}),
    "message__pinned_message": ([], [], {"service_message": 1}),
    "message__migrate_to_chat_id": ([], [{"kind": "migrate", "chat": "-4012345678",
                                          "to": CHAT}], {}),
    "message__migrate_from_chat_id": ([], [], {"migrate_from": 1}),
    "message__private_start": ([("private", "501", "/start")], [OPEN], {}),
    "message__private_text": ([("private", "501", "三年级二班，朋友圈看到的")], [OPEN], {}),
    "message__private_photo": ([], [OPEN], {"private_message": 1}),
    "edited_message__text": ([("edited", "501", "11", "加V：abc12345 兼职日结")], [], {}),
    "edited_message__private": ([], [], {"private_edit": 1}),
    "chat_member__join_invite_link": ([("joined", "502", "qr", "海报A", "")], [], {}),
    "chat_member__join_added_by": ([("joined", "502", "invite", "", "501")], [], {}),
    "chat_member__join_public": ([("joined", "502", "direct", "", "")], [], {}),
    # the admin who approved the request did not invite them
    "chat_member__join_request_approved": ([("joined", "502", "qr", "报名表", "")], [], {}),
    "chat_member__left": ([("left", "502", "left", "")], [], {}),
    "chat_member__kicked": ([("left", "502", "removed", "1")], [], {}),
    "chat_member__promoted": ([("group", CHAT, "502", "")], [], {}),
    "chat_member__demoted": ([("group", CHAT, "", "502")], [], {}),
    "chat_member__restricted": ([], [], {"chat_member_restricted": 1}),  # a mute, still in
    "chat_member__restricted_left": ([("left", "502", "left", "")], [], {}),
    "my_chat_member__added_admin": (
        [("group", CHAT, "", "")], [{"kind": "bot_status", "chat": CHAT,
                                     "title": '家长交流群"1"', "status": "administrator"}], {}),
    "my_chat_member__added_member": (
        [("group", CHAT, "", "")], [{"kind": "bot_status", "chat": CHAT,
                                     "title": '家长交流群"1"', "status": "member"}], {}),
    "my_chat_member__removed": ([], [{"kind": "bot_status", "chat": CHAT,
                                      "title": '家长交流群"1"', "status": "kicked"}], {}),
    "my_chat_member__private_blocked": ([], [{"kind": "private", "user": "501",
                                              "status": "blocked"}], {}),
    "my_chat_member__private_unblocked": ([], [OPEN], {}),
    "chat_join_request__invite_link": ([("join_request", "502", "报名表", "三年级家长 <Lily>")],
                                       [], {}),
    "chat_join_request__no_link": ([("join_request", "501", "", "")], [], {}),
    "callback_query__button": ([], [], {"callback_query": 1}),
    "channel_post__text": ([], [], {"channel_post": 1}),
    "poll__closed": ([], [], {"poll": 1}),
}


def test_every_fixture_has_an_expectation() -> None:
    assert {p.stem for p in FIXTURES.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name: str) -> None:
    result = load(name)
    events, follow_ups, skipped = EXPECTED[name]
    assert summary(result) == events
    assert [dict(f) for f in result.follow_ups] == follow_ups
    assert dict(result.skipped) == skipped


def test_the_same_update_gives_the_same_event_ids() -> None:
    """A webhook retry, or two bots in one group, is recognised as the same event; a private
    chat's message ids are the bot's own, so the bot is part of the id."""
    for name in EXPECTED:
        first = [e.external_event_id for e in load(name).events]
        assert first == [e.external_event_id for e in load(name).events], name
    (private,) = load("message__private_text").events
    assert private.external_event_id.endswith(f":{BOT}")
    (posted,) = load("message__text").events
    assert posted.external_event_id == f"msg:{CHAT}:11"


@pytest.mark.parametrize("field, value, says", [
    ("update_id", "1", "update.update_id"),
    ("message", "text", "message is not an object"),
])
def test_a_malformed_update_names_the_field(field: str, value: Any, says: str) -> None:
    update = json.loads((FIXTURES / "message__text.json").read_text(encoding="utf-8"))
    update[field] = value
    with pytest.raises(tp.TelegramParseError, match=says):
        tp.parse({"bot": BOT, "update": update})
