"""Domain events: what happened on a platform, in platform-neutral words.

Adapters' ``parse`` turns raw payloads into these; :func:`qunyun.services.ingest.do_ingest_event`
stores them. Every event carries the platform's own id for it so a replay is recognised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class JoinScene(StrEnum):
    """How a member came into a group (WeCom's join_scene and WeChat notices map onto these)."""

    INVITE = "invite"
    QR = "qr"
    DIRECT = "direct"
    UNKNOWN = "unknown"


class LeaveScene(StrEnum):
    LEFT = "left"
    REMOVED = "removed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonRef:
    """A person as the platform names them; ``weak`` marks nickname-only identities;
    ``staff`` marks the team's own people (WeCom's corp users), whom moderation leaves be."""

    external_id: str
    kind: str = "user"
    name: str = ""
    weak: bool = False
    staff: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRef:
    external_id: str
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    platform: str
    external_event_id: str
    occurred_at: datetime

    @property
    def kind(self) -> str:
        return type(self).__name__

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError(f"{self.kind}.occurred_at must be timezone-aware")
        if not self.external_event_id:
            raise ValueError(f"{self.kind}.external_event_id must not be empty")


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupUpdated(DomainEvent):
    """A group was seen or its details changed (created, synced, owner changed, dismissed).

    ``announcement`` is None when unknown (a callback that only says "changed"); ``dismissed``
    marks a group the platform has disbanded; ``admins`` (None: unknown) are the people the
    platform lets manage the group besides its owner; ``admins_added``/``admins_removed``
    change that list by one promotion or demotion (Telegram reports them one at a time)."""

    chat: ChatRef
    owner: PersonRef | None = None
    announcement: str | None = None
    dismissed: bool = False
    admins: tuple[PersonRef, ...] | None = None
    admins_added: tuple[PersonRef, ...] = ()
    admins_removed: tuple[PersonRef, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupRenamed(DomainEvent):
    chat: ChatRef
    new_name: str
    by: PersonRef | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberJoined(DomainEvent):
    chat: ChatRef
    member: PersonRef
    inviter: PersonRef | None = None
    scene: JoinScene = JoinScene.UNKNOWN
    channel: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinRequested(DomainEvent):
    """Someone asked to join a group whose admins approve newcomers (Telegram's join
    requests): they are not in it yet; the group's entry gate answers. ``channel`` is the
    invite link's name that brought them, ``bio`` what they say about themselves."""

    chat: ChatRef
    member: PersonRef
    channel: str = ""
    bio: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PrivateMessageReceived(DomainEvent):
    """A person wrote to the team's bot in private (an applicant answering the entry
    gate's questions). Not a group message: no group counts, health or replies."""

    sender: PersonRef
    message_id: str
    text: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberLeft(DomainEvent):
    """``basis="snapshot"`` when the leave was derived from a member list (someone was no
    longer on it), not seen happen."""

    chat: ChatRef
    member: PersonRef
    scene: LeaveScene = LeaveScene.UNKNOWN
    by: PersonRef | None = None
    basis: str = "observed"


@dataclass(frozen=True, slots=True, kw_only=True)
class MessagePosted(DomainEvent):
    chat: ChatRef
    sender: PersonRef
    message_id: str
    text: str = ""
    message_type: str = "text"


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageEdited(DomainEvent):
    """A member changed a message they had posted: the stored text is replaced and
    moderation reads the new words (posting something harmless and editing it into an ad
    is a known trick); it is not another message (counts, check-ins and answers stay)."""

    chat: ChatRef
    sender: PersonRef
    message_id: str
    text: str = ""
    message_type: str = "text"


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRecalled(DomainEvent):
    chat: ChatRef
    sender: PersonRef
    message_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleFired(DomainEvent):
    """A database-backed scheduled job came due; enters the same path as platform events."""

    job_key: str
    job_kind: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    group_external_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupNotice(DomainEvent):
    """A notice about a member that is not a membership change: a pat, a red packet, an
    announcement, a pinned message, an owner change, a nickname change."""

    chat: ChatRef
    notice: str
    actor: PersonRef
    targets: tuple[str, ...] = ()


class ContactChange(StrEnum):
    """What happened to a one-to-one customer relationship (WeCom's change_external_contact)."""

    ADDED = "added"
    HALF_ADDED = "half_added"  # the customer added the staff member, not yet accepted
    EDITED = "edited"
    DELETED = "deleted"  # the staff member deleted the customer
    LOST = "lost"  # the customer deleted the staff member
    TRANSFER_FAILED = "transfer_failed"
    ARCHIVE_APPROVED = "archive_approved"


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactChanged(DomainEvent):
    """A customer's relationship with a staff account changed; ``channel`` is the contact
    code's state that brought them, ``detail`` the platform's extra facts (reason, source)."""

    member: PersonRef
    staff_id: str
    change: ContactChange
    channel: str = ""
    detail: Mapping[str, str] = field(default_factory=dict)
