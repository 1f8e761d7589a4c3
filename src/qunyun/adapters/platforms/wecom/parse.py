"""Decrypted WeCom callback XML → domain events, through one translation table.

A raw WeCom payload is ``{"xml": <decrypted XML>, "digest": <sha256 of it>}``; the digest is
the event's identity (WeCom's FromUserName is always ``sys`` and there is no event id, and a
retry carries the same XML). Member changes name people but not what changed about the group,
and callbacks can arrive out of order or not at all, so events that leave the group's state
unknown add a ``reconcile_group`` follow-up: the connector re-reads ``groupchat/get``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from qunyun.adapters.platforms.base import ParseError, ParseResult, body_digest
from qunyun.domain.events import (
    ChatRef,
    ContactChange,
    ContactChanged,
    GroupUpdated,
    JoinScene,
    LeaveScene,
    MemberJoined,
    MemberLeft,
    PersonRef,
)

PLATFORM = "wecom"


class WecomParseError(ParseError):
    """A decrypted callback is malformed; the message names the field."""


# callback JoinScene: the doc says 0 = invited by a member (directly or by link), 3 = scanned
# the group QR code, and its own example uses 1; treat everything but 3 as an invitation
CALLBACK_JOIN_SCENES = {"0": JoinScene.INVITE, "1": JoinScene.INVITE, "2": JoinScene.INVITE,
                        "3": JoinScene.QR}
# groupchat/get's join_scene uses other codes: 1 invited directly, 2 invite link, 3 QR code
API_JOIN_SCENES = {1: JoinScene.INVITE, 2: JoinScene.INVITE, 3: JoinScene.QR}
QUIT_SCENES = {"0": LeaveScene.LEFT, "1": LeaveScene.REMOVED}
SceneT = TypeVar("SceneT", JoinScene, LeaveScene)


def person(user_id: str, name: str = "") -> PersonRef:
    """External contacts (wm…/wo…) and the corp's own staff are different kinds of id."""
    staff = not user_id.startswith(("wm", "wo"))
    return PersonRef(external_id=user_id, kind="staff_user" if staff else "external_user",
                     name=name, staff=staff)


def read_event(xml: str) -> dict[str, Any]:
    """Flat fields of the event; ``MemChangeList`` as a list in both of its forms (old: one
    comma-separated text; new: ``<Item>`` children, possibly just one)."""
    try:
        root: Element = SafeET.fromstring(xml, forbid_dtd=True)
    except (SafeET.ParseError, DefusedXmlException) as exc:
        raise WecomParseError(f"callback is not acceptable XML: {exc}") from None
    out: dict[str, Any] = {}
    for child in root:
        if child.tag == "MemChangeList":
            items = [(i.text or "").strip() for i in child if i.tag == "Item"]
            if not items:
                items = [p.strip() for p in (child.text or "").split(",")]
            out["MemChangeList"] = [i for i in items if i]
        else:
            out[child.tag] = (child.text or "").strip()
    return out


def _required(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    if not value:
        raise WecomParseError(f"missing field {name!r} in {fields.get('Event', '?')} callback")
    return str(value)


def _when(fields: Mapping[str, Any]) -> datetime:
    text = _required(fields, "CreateTime")
    try:
        return datetime.fromtimestamp(int(text), UTC)
    except (ValueError, OverflowError):
        raise WecomParseError(f"field 'CreateTime' is not a unix time: {text!r}") from None


def _chat(fields: Mapping[str, Any]) -> ChatRef:
    return ChatRef(external_id=_required(fields, "ChatId"))


def _reconcile(result: ParseResult, fields: Mapping[str, Any]) -> None:
    result.follow_ups.append({
        "kind": "reconcile_group", "chat": _required(fields, "ChatId"),
        "last_version": str(fields.get("LastMemVer", "")),
        "current_version": str(fields.get("CurMemVer", ""))})


def _chat_create(fields: Mapping[str, Any], key: str, result: ParseResult) -> None:
    result.events.append(GroupUpdated(platform=PLATFORM, external_event_id=key,
                                      occurred_at=_when(fields), chat=_chat(fields)))
    _reconcile(result, fields)


def _chat_dismiss(fields: Mapping[str, Any], key: str, result: ParseResult) -> None:
    result.events.append(GroupUpdated(platform=PLATFORM, external_event_id=key,
                                      occurred_at=_when(fields), chat=_chat(fields),
                                      dismissed=True))


def _members(fields: Mapping[str, Any]) -> list[str]:
    ids = fields.get("MemChangeList") or []
    count = fields.get("MemChangeCnt")
    if not ids and count and count != "0":
        # an old payload without the list: only groupchat/get can tell who it was
        return []
    return list(ids)


def _scene(fields: Mapping[str, Any], name: str, scenes: Mapping[str, SceneT]) -> SceneT:
    """The domain scene for WeCom's numeric JoinScene/QuitScene; unknown values refused."""
    value = fields.get(name, "")
    if value not in scenes:
        raise WecomParseError(f"field {name!r} has unknown value {value!r}")
    return scenes[value]


def _add_member(fields: Mapping[str, Any], key: str, result: ParseResult) -> None:
    scene = _scene(fields, "JoinScene", CALLBACK_JOIN_SCENES)
    at, chat = _when(fields), _chat(fields)
    for user_id in _members(fields):
        result.events.append(MemberJoined(
            platform=PLATFORM, external_event_id=f"{key}:{user_id}", occurred_at=at, chat=chat,
            member=person(user_id), scene=scene))
    _reconcile(result, fields)  # the join's channel (state) and inviter come from the API


def _del_member(fields: Mapping[str, Any], key: str, result: ParseResult) -> None:
    scene = _scene(fields, "QuitScene", QUIT_SCENES)
    at, chat = _when(fields), _chat(fields)
    for user_id in _members(fields):
        result.events.append(MemberLeft(
            platform=PLATFORM, external_event_id=f"{key}:{user_id}", occurred_at=at, chat=chat,
            member=person(user_id), scene=scene))
    _reconcile(result, fields)


def _chat_details_changed(fields: Mapping[str, Any], key: str, result: ParseResult) -> None:
    """change_owner / change_name / change_notice carry no new value: read it from the API."""
    _reconcile(result, fields)


CHAT_UPDATES: dict[str, Callable[[Mapping[str, Any], str, ParseResult], None]] = {
    "add_member": _add_member,
    "del_member": _del_member,
    "change_owner": _chat_details_changed,
    "change_name": _chat_details_changed,
    "change_notice": _chat_details_changed,
}


def _chat_update(fields: Mapping[str, Any], key: str, result: ParseResult) -> None:
    detail = fields.get("UpdateDetail", "")
    handler = CHAT_UPDATES.get(detail)
    if handler is None:
        result.skipped[f"change_external_chat:update:{detail or '<none>'}"] += 1
        return
    handler(fields, key, result)


CONTACT_CHANGES = {
    "add_external_contact": ContactChange.ADDED,
    "add_half_external_contact": ContactChange.HALF_ADDED,
    "edit_external_contact": ContactChange.EDITED,
    "del_external_contact": ContactChange.DELETED,
    "del_follow_user": ContactChange.LOST,
    "transfer_fail": ContactChange.TRANSFER_FAILED,
    "msg_audit_approved": ContactChange.ARCHIVE_APPROVED,
}
_CONTACT_DETAIL = {"FailReason": "reason", "Source": "source", "WelcomeCode": "welcome_code"}


def _contact(fields: Mapping[str, Any], key: str, result: ParseResult) -> None:
    change = CONTACT_CHANGES[fields["ChangeType"]]
    result.events.append(ContactChanged(
        platform=PLATFORM, external_event_id=key, occurred_at=_when(fields),
        member=person(_required(fields, "ExternalUserID")),
        staff_id=_required(fields, "UserID"), change=change,
        channel=str(fields.get("State", "")),
        detail={out: str(fields[raw]) for raw, out in _CONTACT_DETAIL.items()
                if fields.get(raw)}))


def _tag(fields: Mapping[str, Any], key: str, result: ParseResult) -> None:
    result.follow_ups.append({"kind": "sync_tags", "change": str(fields.get("ChangeType", "")),
                              "id": str(fields.get("Id", ""))})


Handler = Callable[[Mapping[str, Any], str, ParseResult], None]
# (Event, ChangeType) → handler; anything else is counted under its raw type and skipped
MAPPER: dict[tuple[str, str], Handler] = {
    ("change_external_chat", "create"): _chat_create,
    ("change_external_chat", "dismiss"): _chat_dismiss,
    ("change_external_chat", "update"): _chat_update,
    **{("change_external_contact", c): _contact for c in CONTACT_CHANGES},
    **{("change_external_tag", c): _tag for c in ("create", "update", "delete", "shuffle")},
}


def parse(raw: Mapping[str, Any]) -> ParseResult:
    xml = raw.get("xml")
    if not isinstance(xml, str) or not xml:
        raise WecomParseError("missing field 'xml' in WeCom payload")
    fields = read_event(xml)
    key = f"cb:{raw.get('digest') or body_digest(xml)}"
    result = ParseResult()
    event, change = fields.get("Event", ""), fields.get("ChangeType", "")
    handler = MAPPER.get((event, change))
    if handler is None:
        kind = event or fields.get("MsgType", "") or "<none>"
        result.skipped[f"{kind}:{change}" if change else kind] += 1
        return result
    handler(fields, key, result)
    return result
