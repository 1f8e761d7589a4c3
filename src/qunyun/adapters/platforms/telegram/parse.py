"""Telegram updates → domain events, through one table of update kinds.

A raw payload is ``{"bot": <bot id>, "update": <the Update object>}``. Events are keyed by
what happened, not by the update (``update_id`` is per bot): two bots in the same group and
a member change reported both as a ``chat_member`` update and as a service message become
one event each. Group chats are read whole; in a private chat with the bot only words are
read (an applicant answering the entry gate). Join requests are events for the entry gate;
``my_chat_member`` (the bot itself added, promoted, removed) is a follow-up for the
connector: it records the bot's rights per chat.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from qunyun.adapters.platforms.base import ParseError, ParseResult
from qunyun.domain.events import (
    ChatRef,
    DomainEvent,
    GroupRenamed,
    GroupUpdated,
    JoinRequested,
    JoinScene,
    LeaveScene,
    MemberJoined,
    MemberLeft,
    MessageEdited,
    MessagePosted,
    PersonRef,
    PrivateMessageReceived,
)

PLATFORM = "telegram"
GROUP_TYPES = ("group", "supergroup")
IN = ("member", "administrator", "creator", "restricted")
OUT = ("left", "kicked")
ADMIN = ("administrator", "creator")
# what a message carries besides text, as the moderation and health code names it
MEDIA = (("photo", "image"), ("sticker", "sticker"), ("animation", "animation"),
         ("video", "video"), ("voice", "voice"), ("video_note", "video"),
         ("audio", "audio"), ("document", "file"), ("contact", "card"), ("location", "location"),
         ("poll", "poll"))


class TelegramParseError(ParseError):
    """An update is malformed; the message names the field."""


def _field(data: Mapping[str, Any], key: str, where: str) -> Any:
    value = data.get(key)
    if value is None:
        raise TelegramParseError(f"{where}.{key} is missing")
    return value


def _when(data: Mapping[str, Any], where: str, key: str = "date") -> datetime:
    value = _field(data, key, where)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**33:
        raise TelegramParseError(f"{where}.{key} is not a Unix time: {value!r}")
    return datetime.fromtimestamp(value, UTC)


def user(data: Mapping[str, Any] | None, where: str) -> PersonRef:
    if not isinstance(data, Mapping):
        raise TelegramParseError(f"{where} is missing")
    uid = _field(data, "id", where)
    if isinstance(uid, bool) or not isinstance(uid, int):
        raise TelegramParseError(f"{where}.id is not a number: {uid!r}")
    name = " ".join(str(p) for p in (data.get("first_name"), data.get("last_name")) if p)
    return PersonRef(external_id=str(uid), kind="user", name=name[:255] or
                     str(data.get("username") or ""))


def sender_of(message: Mapping[str, Any], where: str) -> PersonRef:
    """Who posted: a user, or a channel or group posting under its own name (an anonymous
    admin, a linked channel — the usual identity of forwarded spam)."""
    sender_chat = message.get("sender_chat")
    if isinstance(sender_chat, Mapping):
        return PersonRef(external_id=str(_field(sender_chat, "id", f"{where}.sender_chat")),
                         kind="chat", name=str(sender_chat.get("title") or ""))
    return user(message.get("from"), f"{where}.from")


def chat_of(data: Mapping[str, Any], where: str) -> ChatRef | None:
    chat = data.get("chat")
    if not isinstance(chat, Mapping):
        raise TelegramParseError(f"{where}.chat is missing")
    if chat.get("type") not in GROUP_TYPES:
        return None
    return ChatRef(external_id=str(_field(chat, "id", f"{where}.chat")),
                   name=str(chat.get("title") or "")[:255])


def _text(message: Mapping[str, Any]) -> str:
    """The words and the links behind them: a text link hides its URL in an entity, and an
    ad hides its link there; moderation must see it."""
    text = str(message.get("text") or message.get("caption") or "")
    hidden = [e.get("url") for e in (message.get("entities") or message.get("caption_entities")
                                     or []) if isinstance(e, Mapping) and e.get("url")]
    return " ".join([text, *map(str, hidden)]).strip()


def _message_type(message: Mapping[str, Any]) -> str:
    if message.get("forward_origin") or message.get("forward_from_chat"):
        return "forward"
    for key, kind in MEDIA:
        if key in message:
            return kind
    entities = message.get("entities") or message.get("caption_entities") or []
    if any(isinstance(e, Mapping) and e.get("type") in ("url", "text_link") for e in entities):
        return "link"
    return "text"


def _private(message: Mapping[str, Any], out: ParseResult) -> None:
    """A message to the bot in a private chat: an applicant answering the entry gate (only
    words count; a picture or sticker there is skipped)."""
    chat = message.get("chat") or {}
    text = str(message.get("text") or "")
    if chat.get("type") != "private":
        out.skipped["private_message"] += 1
        return
    sender = user(message.get("from"), "message.from")
    # whatever they sent, the bot may now write to them
    out.follow_ups.append({"kind": "private", "user": sender.external_id, "status": "open"})
    if not text.strip():
        out.skipped["private_message"] += 1
        return
    message_id = _field(message, "message_id", "message")
    out.events.append(PrivateMessageReceived(
        platform=PLATFORM, occurred_at=_when(message, "message"), sender=sender,
        message_id=str(message_id), text=text[:4096],
        external_event_id=f"private:{sender.external_id}:{message_id}"))


def _message(update: Mapping[str, Any], out: ParseResult) -> None:
    message = update["message"]
    if not isinstance(message, Mapping):
        raise TelegramParseError("message is not an object")
    chat = chat_of(message, "message")
    if chat is None:
        _private(message, out)
        return
    at = _when(message, "message")
    events: list[DomainEvent] = []
    if "migrate_to_chat_id" in message:
        out.follow_ups.append({"kind": "migrate", "chat": chat.external_id,
                               "to": str(message["migrate_to_chat_id"])})
        return
    if "migrate_from_chat_id" in message:
        out.skipped["migrate_from"] += 1
        return
    if "new_chat_title" in message:
        events.append(GroupRenamed(platform=PLATFORM, occurred_at=at,
                                   external_event_id=f"title:{chat.external_id}:{int(at.timestamp())}",
                                   chat=chat, new_name=str(message["new_chat_title"])[:255],
                                   by=user(message.get("from"), "message.from")))
    elif "new_chat_members" in message:  # a bot that is not an admin sees only these
        actor = user(message.get("from"), "message.from")
        for i, raw in enumerate(message["new_chat_members"] or []):
            member = user(raw, f"message.new_chat_members[{i}]")
            events.append(_joined(chat, member, actor, at, link=None))
    elif "left_chat_member" in message:
        member = user(message["left_chat_member"], "message.left_chat_member")
        actor = user(message.get("from"), "message.from")
        removed = actor.external_id != member.external_id
        events.append(_left(chat, member, actor if removed else None, at, removed=removed))
    elif any(k in message for k in ("pinned_message", "group_chat_created",
                                    "supergroup_chat_created", "new_chat_photo",
                                    "delete_chat_photo", "message_auto_delete_timer_changed",
                                    "video_chat_started", "video_chat_ended")):
        out.skipped["service_message"] += 1
        return
    else:
        sender = sender_of(message, "message")
        message_id = str(_field(message, "message_id", "message"))
        events.append(MessagePosted(
            platform=PLATFORM, occurred_at=at, chat=chat, sender=sender,
            external_event_id=f"msg:{chat.external_id}:{message_id}", message_id=message_id,
            text=_text(message)[:20_000], message_type=_message_type(message)))
    out.events.extend(events)


def _edited(update: Mapping[str, Any], out: ParseResult) -> None:
    """An edit: the new words replace the stored ones and are moderated (harmless text
    edited into an ad); one event per edit time."""
    message = update["edited_message"]
    if not isinstance(message, Mapping):
        raise TelegramParseError("edited_message is not an object")
    chat = chat_of(message, "edited_message")
    if chat is None:
        out.skipped["private_edit"] += 1
        return
    at = _when(message, "edited_message", "edit_date") if "edit_date" in message else _when(
        message, "edited_message")
    message_id = str(_field(message, "message_id", "edited_message"))
    sender = sender_of(message, "edited_message")
    out.events.append(MessageEdited(
        platform=PLATFORM, occurred_at=at, chat=chat, sender=sender, message_id=message_id,
        external_event_id=f"edit:{chat.external_id}:{message_id}:{int(at.timestamp())}",
        text=_text(message)[:20_000], message_type=_message_type(message)))


def _joined(chat: ChatRef, member: PersonRef, actor: PersonRef | None, at: datetime,
            link: Mapping[str, Any] | None) -> MemberJoined:
    """Attributed by the invite link's name, else by who added them, else organic."""
    by_other = actor is not None and actor.external_id != member.external_id
    channel = str(link.get("name") or "")[:128] if isinstance(link, Mapping) else ""
    scene = (JoinScene.QR if isinstance(link, Mapping) else
             JoinScene.INVITE if by_other else JoinScene.DIRECT)
    return MemberJoined(platform=PLATFORM, occurred_at=at, chat=chat, member=member,
                        external_event_id=f"join:{chat.external_id}:{member.external_id}:"
                                          f"{int(at.timestamp())}",
                        inviter=actor if by_other else None, scene=scene, channel=channel)


def _left(chat: ChatRef, member: PersonRef, by: PersonRef | None, at: datetime, *,
          removed: bool) -> MemberLeft:
    return MemberLeft(platform=PLATFORM, occurred_at=at, chat=chat, member=member, by=by,
                      external_event_id=f"left:{chat.external_id}:{member.external_id}:"
                                        f"{int(at.timestamp())}",
                      scene=LeaveScene.REMOVED if removed else LeaveScene.LEFT)


def _chat_member(update: Mapping[str, Any], out: ParseResult) -> None:
    change = update["chat_member"]
    chat = chat_of(change, "chat_member")
    if chat is None:
        out.skipped["private_chat_member"] += 1
        return
    at = _when(change, "chat_member")
    old = change.get("old_chat_member") or {}
    new = change.get("new_chat_member") or {}
    member = user(new.get("user"), "chat_member.new_chat_member.user")
    actor = user(change.get("from"), "chat_member.from")
    was_in = old.get("status") in IN and old.get("is_member", True)
    is_in = new.get("status") in IN and new.get("is_member", True)
    if not was_in and is_in:
        # let in by an admin answering their request: the admin did not invite them
        by = None if change.get("via_join_request") else actor
        out.events.append(_joined(chat, member, by, at, change.get("invite_link")))
    elif was_in and not is_in:
        removed = new.get("status") == "kicked" or actor.external_id != member.external_id
        out.events.append(_left(chat, member, actor if removed else None, at,
                                removed=removed))
    elif (old.get("status") in ADMIN) != (new.get("status") in ADMIN):
        # promoted or demoted: the group's staff change (their messages are not moderated)
        promoted = new.get("status") in ADMIN
        out.events.append(GroupUpdated(
            platform=PLATFORM, occurred_at=at, chat=chat,
            external_event_id=f"admin:{chat.external_id}:{member.external_id}:"
                              f"{int(at.timestamp())}",
            admins_added=(member,) if promoted else (),
            admins_removed=() if promoted else (member,)))
    else:
        out.skipped["chat_member_" + str(new.get("status") or "unknown")] += 1


def admins_event(chat: ChatRef, administrators: Sequence[Mapping[str, Any]],
                 at: datetime) -> GroupUpdated:
    """``getChatAdministrators``' answer as the group's owner and admins (bots left out)."""
    owner: PersonRef | None = None
    admins: list[PersonRef] = []
    for i, entry in enumerate(administrators):
        person = entry.get("user") if isinstance(entry, Mapping) else None
        if isinstance(person, Mapping) and person.get("is_bot"):
            continue
        ref = user(person, f"administrators[{i}].user")
        if entry.get("status") == "creator":
            owner = ref
        else:
            admins.append(ref)
    return GroupUpdated(platform=PLATFORM, occurred_at=at, chat=chat, owner=owner,
                        admins=tuple(admins),
                        external_event_id=f"admins:{chat.external_id}:{int(at.timestamp())}")


def _my_chat_member(update: Mapping[str, Any], out: ParseResult) -> None:
    change = update["my_chat_member"]
    chat = chat_of(change, "my_chat_member")
    if chat is None:  # a person blocked the bot (kicked) or unblocked it, in private
        status = str((change.get("new_chat_member") or {}).get("status") or "")
        person = (change.get("chat") or {}).get("id")
        if (change.get("chat") or {}).get("type") == "private" and person is not None:
            out.follow_ups.append({"kind": "private", "user": str(person),
                                   "status": "blocked" if status in OUT else "open"})
        else:
            out.skipped["private_my_chat_member"] += 1
        return
    new = change.get("new_chat_member") or {}
    status = str(new.get("status") or "")
    out.follow_ups.append({"kind": "bot_status", "chat": chat.external_id,
                           "title": chat.name, "status": status})
    if status in IN:  # the group is known from now on, with its title
        at = _when(change, "my_chat_member")
        out.events.append(GroupUpdated(platform=PLATFORM, occurred_at=at, chat=chat,
                                       external_event_id=f"bot:{chat.external_id}:{int(at.timestamp())}"))


def _join_request(update: Mapping[str, Any], out: ParseResult) -> None:
    """Someone asked to join through a link that needs an admin's approval; the bot may
    write to them privately for 5 minutes (``user_chat_id``, which is their user id)."""
    request = update["chat_join_request"]
    if not isinstance(request, Mapping):
        raise TelegramParseError("chat_join_request is not an object")
    chat = chat_of(request, "chat_join_request")
    applicant = user(request.get("from"), "chat_join_request.from")
    if chat is None:
        out.skipped["private_join_request"] += 1
        return
    at = _when(request, "chat_join_request")
    link = request.get("invite_link")
    channel = str(link.get("name") or "") if isinstance(link, Mapping) else ""
    out.events.append(JoinRequested(
        platform=PLATFORM, occurred_at=at, chat=chat, member=applicant,
        channel=channel[:128], bio=str(request.get("bio") or "")[:1000],
        external_event_id=f"request:{chat.external_id}:{applicant.external_id}:"
                          f"{int(at.timestamp())}"))


HANDLERS: dict[str, Callable[[Mapping[str, Any], ParseResult], None]] = {
    "message": _message,
    "edited_message": _edited,
    "chat_member": _chat_member,
    "my_chat_member": _my_chat_member,
    "chat_join_request": _join_request,
}


def parse(raw: Mapping[str, Any]) -> ParseResult:
    update = raw.get("update")
    if not isinstance(update, Mapping):
        raise TelegramParseError("update is missing or not an object")
    update_id = update.get("update_id")
    if isinstance(update_id, bool) or not isinstance(update_id, int):
        raise TelegramParseError(f"update.update_id is not a number: {update_id!r}")
    out = ParseResult()
    kinds = [k for k in update if k != "update_id"]
    handled = [k for k in kinds if k in HANDLERS]
    if not handled:
        for k in kinds:  # edited messages, callbacks, polls …: counted, skipped
            out.skipped[k] += 1
        return out
    HANDLERS[handled[0]](update, out)
    # a private chat's message ids are the bot's own: two bots' chats with one person share
    # them, so the bot is part of what makes the event one
    bot = str(raw.get("bot") or "")
    out.events = [replace(e, external_event_id=f"{e.external_event_id}:{bot}")
                  if isinstance(e, PrivateMessageReceived) else e for e in out.events]
    return out
