"""Group vocabulary (F7): types and lifecycle states."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from qunyun.domain.events import ChatRef, JoinScene, PersonRef


class GroupType(StrEnum):
    TEMPORARY = "temporary"
    LONG_TERM = "long_term"
    FAN = "fan"
    AGENT = "agent"
    LEARNING = "learning"


class GroupState(StrEnum):
    PLANNED = "planned"
    RECRUITING = "recruiting"
    ACTIVE = "active"
    COOLING = "cooling"
    DISSOLVING = "dissolving"
    CLOSED = "closed"


DEFAULT_CAPACITY = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterMember:
    """One person on a platform's member list, with how and when they came in."""

    person: PersonRef
    joined_at: datetime | None = None
    scene: JoinScene = JoinScene.UNKNOWN
    inviter: PersonRef | None = None
    channel: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Roster:
    """A group as the platform reports it now: the truth callbacks are reconciled against."""

    chat: ChatRef
    taken_at: datetime
    owner: PersonRef | None = None
    announcement: str | None = None
    version: str = ""
    members: tuple[RosterMember, ...] = field(default_factory=tuple)
