"""Group vocabulary (F7): types and lifecycle states."""

from __future__ import annotations

from enum import StrEnum


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
