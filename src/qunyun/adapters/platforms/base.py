"""The adapter contract every platform implements, and the errors delivery understands."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from qunyun.domain.actions import Action, Capability
from qunyun.domain.events import DomainEvent
from qunyun.domain.groups import Roster


def body_digest(body: str) -> str:
    """What keys a pushed item (a callback, a webhook update): a platform's retry of it is
    the same digest, so the raw inbox holds it once and its events dedupe."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class ParseError(ValueError):
    """A raw payload is malformed; the message names the field (and line, for files)."""


class PlatformError(Exception):
    """A platform API refused a request or could not be reached; the message says which call
    and why in words an operator can act on (the web answers 502, the CLI exits 1)."""


class SendError(Exception):
    """Base for failures reported by ``PlatformAdapter.send``."""


class TransientSendError(SendError):
    """Worth retrying later (network, rate limit, platform busy)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """Retrying will not help (group gone, member not found, content refused)."""


class NeedsPersonError(PermanentSendError):
    """The platform could do it, but not here: the bot lacks a right in this chat. A person
    does it (the outbox turns the row into a staff task whose reason is this message;
    ``says``, stored words, shows it in the reader's language)."""

    def __init__(self, message: str, *, says: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.says = dict(says) if says else None


@dataclass(frozen=True, slots=True)
class Delivery:
    """An action with the platform ids the adapter needs, resolved by the delivery service."""

    idempotency_key: str
    action: Action
    chat_external_id: str | None
    member_external_ids: Mapping[int, str] = field(default_factory=dict)
    member_names: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Receipt:
    platform_message_id: str = ""
    duplicate: bool = False  # the platform had already applied this idempotency key
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ParseResult:
    events: list[DomainEvent] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # raw type -> count, on purpose
    # work the payload asks for beyond its events, such as {"kind": "reconcile_group",
    # "chat": …}: the callback says something changed without saying what (WeCom)
    follow_ups: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ConfirmTicket:
    """A send handed to the platform for a person to confirm (WeCom: one per group owner);
    ``failed`` names the groups the platform refused at once, with the reason."""

    ticket: str
    chats: tuple[str, ...]
    failed: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JoinCodeSpec:
    """What a join code points at: the groups it lets people into (platform chat ids) and the
    channel that names it (WeCom's ``state``, a Telegram invite link's name)."""

    channel: str
    chats: tuple[str, ...]
    remark: str = ""
    room_base_name: str = ""


@dataclass(frozen=True, slots=True)
class JoinCodeMade:
    """The platform's id of a join code and what people scan or tap (a QR image URL or an
    invite link)."""

    code_id: str
    link: str


@dataclass(frozen=True, slots=True)
class JoinCodeLimits:
    """How many groups one code may point at, and the group sizes the platform allows."""

    max_groups: int
    capacities: tuple[int, ...]


# per group of a ticket: still waiting, sent, or failed (with the reason)
CONFIRM_PENDING, CONFIRM_SENT, CONFIRM_FAILED = "pending", "sent", "failed"


@dataclass(frozen=True, slots=True)
class SendRate:
    """The platform's own limits on sends: overall per second and per group per minute
    (Telegram: about 30 a second per bot and 20 a minute in one group). The outbox keeps
    to the stricter of these and the team's settings."""

    per_second: float
    per_group_per_minute: float


class PlatformAdapter(ABC):
    name: ClassVar[str]
    capabilities: frozenset[Capability]
    send_rate: SendRate | None = None

    @abstractmethod
    def parse(self, raw: Mapping[str, Any]) -> ParseResult:
        """Translate one raw payload into domain events; unknown types are counted, skipped."""

    @abstractmethod
    def send(self, delivery: Delivery) -> Receipt:
        """Perform the action on the platform or raise a :class:`SendError`."""

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    # Platforms with BROADCAST_NEEDS_CONFIRMATION implement these four.
    def submit_confirmation(self, chats: Sequence[str], text: str,
                            attachments: Sequence[Mapping[str, str]]) -> list[ConfirmTicket]:
        raise NotImplementedError(f"{self.name} cannot hand sends over for confirmation")

    def poll_confirmation(self, ticket: str) -> dict[str, tuple[str, str]]:
        """Each group of the ticket → (CONFIRM_PENDING | CONFIRM_SENT | CONFIRM_FAILED, why)."""
        raise NotImplementedError(f"{self.name} cannot hand sends over for confirmation")

    def remind_confirmation(self, ticket: str) -> None:
        raise NotImplementedError(f"{self.name} cannot hand sends over for confirmation")

    def cancel_confirmation(self, ticket: str) -> None:
        raise NotImplementedError(f"{self.name} cannot hand sends over for confirmation")

    def roster(self, chat_external_id: str) -> Roster:
        """The group and its members as the platform reports them now (for reconciling)."""
        raise NotImplementedError(f"{self.name} cannot read member lists")

    # Platforms with CREATE_JOIN_CODE implement these three and set ``join_code_limits``.
    join_code_limits: JoinCodeLimits | None = None

    def check_account(self, account: str) -> None:  # noqa: B027 - optional hook
        """Raise when ``account`` (a WeCom corp, a bot) is not one qunyun can act for: asked
        before a join code's row is written."""

    def create_join_code(self, account: str, spec: JoinCodeSpec) -> JoinCodeMade:
        raise NotImplementedError(f"{self.name} cannot make join codes")

    def update_join_code(self, account: str, code_id: str, spec: JoinCodeSpec) -> JoinCodeMade:
        """Point the code at ``spec.chats`` (the whole list: platforms overwrite it)."""
        raise NotImplementedError(f"{self.name} cannot make join codes")

    def delete_join_code(self, account: str, code_id: str) -> None:
        """Remove the code; one the platform no longer has counts as removed."""
        raise NotImplementedError(f"{self.name} cannot make join codes")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (connections, files)."""
