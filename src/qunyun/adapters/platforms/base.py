"""The adapter contract every platform implements, and the errors delivery understands."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from qunyun.domain.actions import Action, Capability
from qunyun.domain.events import DomainEvent


class ParseError(ValueError):
    """A raw payload is malformed; the message names the field (and line, for files)."""


class SendError(Exception):
    """Base for failures reported by ``PlatformAdapter.send``."""


class TransientSendError(SendError):
    """Worth retrying later (network, rate limit, platform busy)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """Retrying will not help (group gone, member not found, content refused)."""


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


class PlatformAdapter(ABC):
    name: ClassVar[str]
    capabilities: frozenset[Capability]

    @abstractmethod
    def parse(self, raw: Mapping[str, Any]) -> ParseResult:
        """Translate one raw payload into domain events; unknown types are counted, skipped."""

    @abstractmethod
    def send(self, delivery: Delivery) -> Receipt:
        """Perform the action on the platform or raise a :class:`SendError`."""

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (connections, files)."""
