"""Actions: what the engine asks the outside world to do.

Actions name groups and members by qunyun ids; the delivery service resolves platform ids.
Each action declares the capabilities it needs, so the outbox can route what a platform cannot
do to a staff task without any platform check outside the adapters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any, ClassVar


class Capability(StrEnum):
    SEND_TEXT = "send_text"
    MENTION = "mention"
    SEND_PRIVATE = "send_private"
    REMOVE_MEMBER = "remove_member"
    RENAME_GROUP = "rename_group"
    # Sending to many groups without a human confirming each send (WeCom cannot).
    BROADCAST_UNCONFIRMED = "broadcast_unconfirmed"
    # The platform recognises a repeated idempotency key and applies the send once.
    IDEMPOTENT_SEND = "idempotent_send"


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """Base class; ``type_name`` is the stored discriminator."""

    type_name: ClassVar[str] = "action"
    group_id: int | None = None

    def required_capabilities(self) -> frozenset[Capability]:
        return frozenset()

    def to_payload(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    def summary(self) -> str:
        """A short human-readable line (used in logs and staff tasks)."""
        return self.type_name


@dataclass(frozen=True, slots=True, kw_only=True)
class SendText(Action):
    """Post ``text`` in a group, @mentioning ``mention_member_ids``."""

    type_name: ClassVar[str] = "send_text"
    text: str
    mention_member_ids: tuple[int, ...] = ()

    def required_capabilities(self) -> frozenset[Capability]:
        caps = {Capability.SEND_TEXT}
        if self.mention_member_ids:
            caps.add(Capability.MENTION)
        return frozenset(caps)

    def summary(self) -> str:
        return self.text if len(self.text) <= 60 else self.text[:57] + "..."


@dataclass(frozen=True, slots=True, kw_only=True)
class SendPrivate(Action):
    type_name: ClassVar[str] = "send_private"
    member_id: int
    text: str

    def required_capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.SEND_PRIVATE})


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveMember(Action):
    type_name: ClassVar[str] = "remove_member"
    member_id: int
    reason: str = ""

    def required_capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.REMOVE_MEMBER})


@dataclass(frozen=True, slots=True, kw_only=True)
class RenameGroup(Action):
    type_name: ClassVar[str] = "rename_group"
    new_name: str

    def required_capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.RENAME_GROUP})


ACTION_TYPES: dict[str, type[Action]] = {
    cls.type_name: cls for cls in (SendText, SendPrivate, RemoveMember, RenameGroup)
}


def action_from_payload(type_name: str, payload: dict[str, Any]) -> Action:
    """Rebuild a stored action; unknown keys are an error so a schema drift is noticed."""
    cls = ACTION_TYPES.get(type_name)
    if cls is None:
        raise ValueError(f"unknown action type {type_name!r}")
    names = {f.name for f in fields(cls)}
    unknown = set(payload) - names
    if unknown:
        raise ValueError(f"{type_name}: unknown fields {sorted(unknown)}")
    kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                              for k, v in payload.items()}
    return cls(**kwargs)
