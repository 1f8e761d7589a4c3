"""Sandbox raw payloads → domain events, through one translation table.

A raw sandbox event is a JSON object: ``{"type": "join", "id": "e1", "at": "2026-…Z",
"chat": "g1", "chat_name": "…", "user": "u1", "user_name": "…", …}``; ``user_staff: true``
marks one of the team's own staff, and a ``group`` event may list its ``admins`` (user ids).
``join_request`` (with ``channel`` and ``bio``) asks to join a group whose admins approve
newcomers; ``private`` (``user``, ``message_id``, ``text``) writes to the bot in private.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
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
    MessagePosted,
    MessageRecalled,
    PersonRef,
    PrivateMessageReceived,
)

PLATFORM = "sandbox"


class SandboxParseError(ParseError):
    """A raw payload is malformed; the message names the field."""


def _field(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if value is None or value == "":
        raise SandboxParseError(f"missing field {name!r} in sandbox event {raw.get('id', '?')!r}")
    return str(value)


def _when(raw: Mapping[str, Any]) -> datetime:
    text = _field(raw, "at")
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SandboxParseError(f"field 'at' is not an ISO time: {text!r}") from exc
    if value.tzinfo is None:
        raise SandboxParseError(f"field 'at' has no time zone: {text!r}")
    return value


def _person(raw: Mapping[str, Any], key: str) -> PersonRef:
    return PersonRef(external_id=_field(raw, key), name=str(raw.get(f"{key}_name", "")),
                     staff=bool(raw.get(f"{key}_staff")))


def _maybe_person(raw: Mapping[str, Any], key: str) -> PersonRef | None:
    return _person(raw, key) if raw.get(key) else None


def _base(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "platform": PLATFORM,
        "external_event_id": _field(raw, "id"),
        "occurred_at": _when(raw),
    }


def _chat(raw: Mapping[str, Any]) -> ChatRef:
    return ChatRef(external_id=_field(raw, "chat"), name=str(raw.get("chat_name", "")))


def _group(raw: Mapping[str, Any]) -> DomainEvent:
    admins = raw.get("admins")
    if admins is not None and (not isinstance(admins, list)
                               or not all(isinstance(a, str) and a for a in admins)):
        raise SandboxParseError(f"field 'admins' must be a list of user ids in sandbox event "
                                f"{raw.get('id', '?')!r}")
    return GroupUpdated(**_base(raw), chat=_chat(raw), owner=_maybe_person(raw, "owner"),
                        admins=None if admins is None else tuple(
                            PersonRef(external_id=a) for a in admins))


def _rename(raw: Mapping[str, Any]) -> DomainEvent:
    return GroupRenamed(**_base(raw), chat=_chat(raw), new_name=_field(raw, "new_name"),
                        by=_maybe_person(raw, "user"))


def _join(raw: Mapping[str, Any]) -> DomainEvent:
    scene = str(raw.get("scene", "unknown"))
    if scene not in JoinScene.__members__.values():
        raise SandboxParseError(f"field 'scene' has unknown value {scene!r}")
    return MemberJoined(**_base(raw), chat=_chat(raw), member=_person(raw, "user"),
                        inviter=_maybe_person(raw, "inviter"), scene=JoinScene(scene),
                        channel=str(raw.get("channel", "")))


def _leave(raw: Mapping[str, Any]) -> DomainEvent:
    scene = LeaveScene.REMOVED if raw.get("by") else LeaveScene.LEFT
    return MemberLeft(**_base(raw), chat=_chat(raw), member=_person(raw, "user"), scene=scene,
                      by=_maybe_person(raw, "by"))


def _message(raw: Mapping[str, Any]) -> DomainEvent:
    return MessagePosted(**_base(raw), chat=_chat(raw), sender=_person(raw, "user"),
                         message_id=_field(raw, "message_id"), text=str(raw.get("text", "")),
                         message_type=str(raw.get("message_type", "text")))


def _join_request(raw: Mapping[str, Any]) -> DomainEvent:
    return JoinRequested(**_base(raw), chat=_chat(raw), member=_person(raw, "user"),
                         channel=str(raw.get("channel", "")), bio=str(raw.get("bio", "")))


def _private(raw: Mapping[str, Any]) -> DomainEvent:
    return PrivateMessageReceived(**_base(raw), sender=_person(raw, "user"),
                                  message_id=_field(raw, "message_id"),
                                  text=str(raw.get("text", "")))


def _recall(raw: Mapping[str, Any]) -> DomainEvent:
    return MessageRecalled(**_base(raw), chat=_chat(raw), sender=_person(raw, "user"),
                           message_id=_field(raw, "message_id"))


MAPPER: dict[str, Callable[[Mapping[str, Any]], DomainEvent]] = {
    "group": _group,
    "rename": _rename,
    "join": _join,
    "leave": _leave,
    "message": _message,
    "recall": _recall,
    "join_request": _join_request,  # asks to join a group whose admins approve newcomers
    "private": _private,  # writes to the team's bot in private (an applicant's answer)
}


def parse(raw: Mapping[str, Any]) -> ParseResult:
    result = ParseResult()
    raw_type = str(raw.get("type", ""))
    creator = MAPPER.get(raw_type)
    if creator is None:
        result.skipped[raw_type or "<none>"] += 1
        return result
    result.events.append(creator(raw))
    return result
