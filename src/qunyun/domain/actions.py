"""Actions: what the engine asks the outside world to do.

Actions name groups and members by qunyun ids; the delivery service resolves platform ids.
Each action declares the capabilities it needs, so the outbox can route what a platform cannot
do to a staff task without any platform check outside the adapters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any, ClassVar

from qunyun.i18n import InvalidValue


class Capability(StrEnum):
    SEND_TEXT = "send_text"
    MENTION = "mention"
    SEND_PRIVATE = "send_private"
    REMOVE_MEMBER = "remove_member"
    # Keep a member from posting for a while (Telegram's restrictChatMember); WeCom cannot.
    MUTE_MEMBER = "mute_member"
    # Delete a member's message (the ad itself; Telegram's deleteMessage); WeCom cannot.
    DELETE_MESSAGE = "delete_message"
    # Let a removed member back (lift a platform ban, add them again); WeCom cannot, so a
    # person re-invites them.
    RESTORE_MEMBER = "restore_member"
    RENAME_GROUP = "rename_group"
    # Sending to many groups without a human confirming each send (WeCom cannot).
    BROADCAST_UNCONFIRMED = "broadcast_unconfirmed"
    # The platform recognises a repeated idempotency key and applies the send once.
    IDEMPOTENT_SEND = "idempotent_send"
    SEND_IMAGE = "send_image"
    SEND_LINK = "send_link"
    SEND_MINIPROGRAM = "send_miniprogram"
    # A push can be handed to the platform as a send that the group owner confirms in the
    # client (WeCom's add_msg_template); the adapter submits and polls it.
    BROADCAST_NEEDS_CONFIRMATION = "broadcast_needs_confirmation"
    # A join code (群活码, an invite link) over one or more groups, whose channel name tells
    # which code brought each member: WeCom's join_way with ``state``, Telegram's named
    # invite links, the sandbox's codes. The adapter creates, repoints and deletes it.
    CREATE_JOIN_CODE = "create_join_code"
    # Answer a request to join a group that waits for an admin (Telegram's join requests);
    # WeCom holds no such request, so there a person lets the applicant in.
    ANSWER_JOIN_REQUEST = "answer_join_request"
    # Pin a message the bot sent (Telegram's pinChatMessage); elsewhere a pin is left out.
    PIN_MESSAGE = "pin_message"


# what each capability means to the person who does it by hand (task reasons, the log)
CAPABILITY_WORDS: dict[Capability, str] = {
    Capability.SEND_TEXT: "在群里发消息", Capability.MENTION: "@成员",
    Capability.SEND_PRIVATE: "私聊发消息", Capability.REMOVE_MEMBER: "移出成员",
    Capability.MUTE_MEMBER: "禁言成员", Capability.DELETE_MESSAGE: "删除消息",
    Capability.RESTORE_MEMBER: "请成员回群", Capability.RENAME_GROUP: "改群名",
    Capability.BROADCAST_UNCONFIRMED: "不经确认群发",
    Capability.IDEMPOTENT_SEND: "去重发送", Capability.SEND_IMAGE: "发图片",
    Capability.SEND_LINK: "发链接卡片", Capability.SEND_MINIPROGRAM: "发小程序",
    Capability.BROADCAST_NEEDS_CONFIRMATION: "提交群发确认",
    Capability.CREATE_JOIN_CODE: "生成群活码",
    Capability.ANSWER_JOIN_REQUEST: "处理入群申请",
    Capability.PIN_MESSAGE: "置顶消息",
}


def describe_missing(missing: frozenset[Capability] | set[Capability] | list[str]) -> str:
    """Why a person has to do it: ``平台不能自动移出成员，请手动完成``."""
    words = "、".join(CAPABILITY_WORDS.get(Capability(c), str(c)) for c in sorted(missing))
    return f"平台不能自动{words}，请手动完成"


# what a platform can do, by platform name (the runtime's adapters answer it)
CapabilityLookup = Callable[[str], frozenset[Capability]]


_ATTACHMENT_CAPABILITY = {"image": Capability.SEND_IMAGE, "link": Capability.SEND_LINK,
                          "miniprogram": Capability.SEND_MINIPROGRAM}


def _push_capabilities(broadcast: bool, attachments: tuple[dict[str, str], ...]
                       ) -> set[Capability]:
    """A push (broadcast or playbook step) needs the platform to send it unconfirmed, and
    every attachment needs its kind supported; otherwise a person sends it."""
    caps = {_ATTACHMENT_CAPABILITY[a.get("type", "")] for a in attachments
            if a.get("type", "") in _ATTACHMENT_CAPABILITY}
    if broadcast:
        caps.add(Capability.BROADCAST_UNCONFIRMED)
    return caps


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """Base class; ``type_name`` is the stored discriminator."""

    type_name: ClassVar[str] = "action"
    # internal effects change qunyun's own records in the ingest transaction, never a platform
    internal: ClassVar[bool] = False
    # work only a person can do (answer a question the bot was unsure about): always a task
    needs_person: ClassVar[bool] = False
    # left out where the platform cannot do it, instead of becoming a person's task (the ad
    # deleted with its sender's removal: on WeCom the removal's task is the whole job)
    optional: ClassVar[bool] = False
    group_id: int | None = None

    def required_capabilities(self) -> frozenset[Capability]:
        return frozenset()

    def instead(self) -> tuple[Action, ...] | None:
        """What to do where the platform lacks a capability this needs: other actions (none
        at all: nothing is left to do), or None — a person does this one (a staff task)."""
        return None

    def to_payload(self) -> dict[str, Any]:
        """The fields as JSON takes them (tuples as lists). Shallow: the values are plain
        (ids, text, attachment dicts of strings) and are serialised at once; ``asdict``'s
        deep copy was a fifth of queuing a send."""
        data = {name: getattr(self, name) for name in _field_names(type(self))}
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = [dict(v) if isinstance(v, dict) else v for v in value]
        return data

    def summary(self) -> str:
        """A short human-readable line (used in logs and staff tasks)."""
        return self.type_name

    def timeliness(self) -> str:
        """How soon after the event it answers this action must happen: ``reply`` (minutes:
        a reply, warning or greeting), ``act`` (hours: a removal, a hand-off to staff), or
        ``""`` (any time: pushes, effects, enforcing someone's standing). Internal effects are
        applied whatever their age; a rule may still ask (a new blacklist entry is "act")."""
        return ""

    def own_key(self) -> str:
        """An idempotency key of its own, when the same action may come from many events and
        must happen once (removing a blacklisted member from a group); else ``""``."""
        return ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SendText(Action):
    """Post ``text`` in a group, @mentioning ``mention_member_ids``.

    With a ``batch_key``, the send waits ``batch_seconds`` and later sends with the same key in
    the same group merge into it while it waits: ``template`` is re-filled with every name
    (a welcome for everyone who joined within the window).
    """

    type_name: ClassVar[str] = "send_text"
    text: str
    mention_member_ids: tuple[int, ...] = ()
    batch_key: str = ""
    batch_seconds: int = 0
    template: str = ""
    names: tuple[str, ...] = ()
    # a push from a broadcast or playbook step (needs unconfirmed broadcasting)
    broadcast: bool = False
    attachments: tuple[dict[str, str], ...] = ()
    # the platform's id of the message this answers (a FAQ answer, a check-in's reply): shown
    # as a reply to it where the platform threads replies (Telegram), else a plain post
    reply_to: str = ""
    # pinned in the group once sent (an announcement); where the platform cannot pin, or
    # the bot may not, the message is sent unpinned and the receipt says so
    pin: bool = False

    def merged(self, other: SendText) -> SendText:
        """This batched send with ``other``'s newcomers added (each member once)."""
        ids = self.mention_member_ids + tuple(
            m for m in other.mention_member_ids if m not in self.mention_member_ids)
        names = self.names + tuple(n for n, m in zip(other.names, other.mention_member_ids,
                                                     strict=False)
                                   if m not in self.mention_member_ids)
        return replace(self, mention_member_ids=ids, names=names,
                       text=fill_names(self.template, names) if self.template else self.text)

    def required_capabilities(self) -> frozenset[Capability]:
        caps = {Capability.SEND_TEXT} | _push_capabilities(self.broadcast, self.attachments)
        if self.mention_member_ids:
            caps.add(Capability.MENTION)
        return frozenset(caps)

    def summary(self) -> str:
        return self.text if len(self.text) <= 60 else self.text[:57] + "..."

    def timeliness(self) -> str:
        return "" if self.broadcast else "reply"


@dataclass(frozen=True, slots=True, kw_only=True)
class SendPrivate(Action):
    type_name: ClassVar[str] = "send_private"
    member_id: int
    text: str
    broadcast: bool = False
    attachments: tuple[dict[str, str], ...] = ()

    def required_capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.SEND_PRIVATE}
                         | _push_capabilities(self.broadcast, self.attachments))

    def summary(self) -> str:
        return self.text if len(self.text) <= 60 else self.text[:57] + "..."

    def timeliness(self) -> str:
        return "" if self.broadcast else "reply"


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveMember(Action):
    """Remove a member from a group. ``blacklisted``: because of who they are (a blacklist
    entry), not of what they just did, so it never goes stale; ``key`` makes the removals
    that many events ask for (every message a blacklisted member still posts) happen once."""

    type_name: ClassVar[str] = "remove_member"
    member_id: int
    reason: str = ""
    blacklisted: bool = False
    key: str = ""

    def required_capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.REMOVE_MEMBER})

    def summary(self) -> str:
        return _clip(f"移出群聊：{self.reason}" if self.reason else "移出群聊")

    def timeliness(self) -> str:
        return "" if self.blacklisted else "act"

    def own_key(self) -> str:
        return self.key


@dataclass(frozen=True, slots=True, kw_only=True)
class MuteMember(Action):
    """Keep a member from posting for ``minutes`` (a moderation step between a warning and
    a removal: what group admins on Telegram ask for instead of kicking)."""

    type_name: ClassVar[str] = "mute_member"
    member_id: int
    minutes: int
    reason: str = ""

    def required_capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.MUTE_MEMBER})

    def summary(self) -> str:
        return _clip(f"禁言 {self.minutes} 分钟：{self.reason}" if self.reason
                     else f"禁言 {self.minutes} 分钟")

    def timeliness(self) -> str:
        return "act"


@dataclass(frozen=True, slots=True, kw_only=True)
class UnmuteMember(Action):
    """Lift a mute before it ends (it turned out wrong): the member may post again."""

    type_name: ClassVar[str] = "unmute_member"
    member_id: int
    reason: str = ""

    def required_capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.MUTE_MEMBER})

    def summary(self) -> str:
        return _clip(f"解除禁言：{self.reason}" if self.reason else "解除禁言")


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteMessage(Action):
    """Delete a member's message from the group (an ad moderation blocked), where the
    platform lets the bot."""

    type_name: ClassVar[str] = "delete_message"
    optional: ClassVar[bool] = True
    member_id: int
    message_id: str
    reason: str = ""

    def required_capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.DELETE_MESSAGE})

    def summary(self) -> str:
        return _clip(f"删除消息：{self.reason}" if self.reason else "删除消息")

    def timeliness(self) -> str:
        return "act"


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreMember(Action):
    """Undo a removal that turned out wrong: lift the platform's ban or add them back; where
    the platform cannot, a person re-invites them."""

    type_name: ClassVar[str] = "restore_member"
    member_id: int
    reason: str = ""

    def required_capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.RESTORE_MEMBER})

    def summary(self) -> str:
        return _clip(f"重新邀请入群：{self.reason}" if self.reason else "重新邀请入群")


@dataclass(frozen=True, slots=True, kw_only=True)
class RenameGroup(Action):
    type_name: ClassVar[str] = "rename_group"
    new_name: str

    def required_capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.RENAME_GROUP})


@dataclass(frozen=True, slots=True, kw_only=True)
class HandToStaff(Action):
    """A question or case the bot should not answer itself: becomes a staff task."""

    type_name: ClassVar[str] = "hand_to_staff"
    needs_person: ClassVar[bool] = True
    member_id: int | None = None
    title: str
    reason: str = ""

    def summary(self) -> str:
        return _clip(self.title)

    def timeliness(self) -> str:
        return "act"


# --- internal effects: applied by services in the ingest transaction -------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordModeration(Action):
    type_name: ClassVar[str] = "record_moderation"
    internal: ClassVar[bool] = True
    member_id: int
    message_id: str
    text: str
    verdict: str
    score: float
    reasons: tuple[str, ...]
    action: str  # none | warn | remove | blacklist | review
    status: str  # logged | pending
    signals: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class BlacklistMember(Action):
    type_name: ClassVar[str] = "blacklist_member"
    internal: ClassVar[bool] = True
    member_id: int
    reason: str
    days: int | None = None

    def timeliness(self) -> str:
        return "act"  # for what someone just did: like a removal, not for last week's


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordCheckin(Action):
    type_name: ClassVar[str] = "record_checkin"
    internal: ClassVar[bool] = True
    member_id: int
    day: str  # team-local YYYY-MM-DD
    streak: int
    source: str
    message_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AwardPoints(Action):
    type_name: ClassVar[str] = "award_points"
    internal: ClassVar[bool] = True
    member_id: int
    points: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteCooldown(Action):
    """A rule fired in a group: remember when, so it keeps quiet for its cool-down."""

    type_name: ClassVar[str] = "note_cooldown"
    internal: ClassVar[bool] = True
    key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerJoinRequest(Action):
    """Let an applicant into the group (``approve``) or turn the request down. ``invite``:
    the message with the group's join code that lets them in where the platform holds no
    request (WeCom); without one a person lets them in."""

    type_name: ClassVar[str] = "answer_join_request"
    member_id: int
    approve: bool
    reason: str = ""
    invite: str = ""

    def required_capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.ANSWER_JOIN_REQUEST})

    def instead(self) -> tuple[Action, ...] | None:
        # no request waits on the platform: a decline needs nothing there (the applicant
        # was told, or is not told on purpose); an approval hands out the join code
        if not self.approve:
            return ()
        if self.invite:
            return (SendPrivate(group_id=self.group_id, member_id=self.member_id,
                                text=self.invite),)
        return None

    def summary(self) -> str:
        head = "通过入群申请" if self.approve else "拒绝入群申请"
        return _clip(f"{head}：{self.reason}" if self.reason else head)


@dataclass(frozen=True, slots=True, kw_only=True)
class SettleJoinRequest(Action):
    """What the entry gate decided about an open join request (``asked``: the questions
    went out; ``pending``: a person decides; ``approved``/``declined``)."""

    type_name: ClassVar[str] = "settle_join_request"
    internal: ClassVar[bool] = True
    member_id: int
    status: str
    reason: str = ""


def _clip(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def fill_names(template: str, names: tuple[str, ...]) -> str:
    """Put several names where ``{name}`` is: ``@张三 @李四`` after an @, else ``张三、李四``."""
    joined = " @".join(names) if "@{name}" in template else "、".join(names)
    return template.replace("{name}", joined)


ACTION_TYPES: dict[str, type[Action]] = {
    cls.type_name: cls for cls in (SendText, SendPrivate, RemoveMember, MuteMember,
                                   UnmuteMember, DeleteMessage, RestoreMember,
                                   RenameGroup, HandToStaff, RecordModeration, BlacklistMember,
                                   RecordCheckin, AwardPoints, NoteCooldown,
                                   AnswerJoinRequest, SettleJoinRequest)
}


def action_from_payload(type_name: str, payload: dict[str, Any]) -> Action:
    """Rebuild a stored action; unknown keys are an error so a schema drift is noticed."""
    cls = ACTION_TYPES.get(type_name)
    if cls is None:
        raise InvalidValue("unknown action type {type_name!r}", type_name=type_name)
    names = {f.name for f in fields(cls)}
    unknown = set(payload) - names
    if unknown:
        raise InvalidValue("{type_name}: unknown fields {unknown}",
                         type_name=type_name, unknown=sorted(unknown))
    kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                              for k, v in payload.items()}
    return cls(**kwargs)
