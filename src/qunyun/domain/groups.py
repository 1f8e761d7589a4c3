"""Group vocabulary (F7): types, lifecycle states and how states move (F10, pure).

A group is planned (made ahead of a campaign, maybe before its chat exists), recruiting
(its join code is open), active, cooling (activity fell below its thresholds for days),
dissolving (the dissolution SOP runs) and closed (history kept for analytics). States move
by rules (:func:`automatic`) or by hand, only along :data:`TRANSITIONS`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from qunyun.domain.events import ChatRef, JoinScene, PersonRef
from qunyun.domain.fission import CODE_PREFIX, split_code
from qunyun.i18n import InvalidValue, Term, Terms


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


class GroupRole(StrEnum):
    """What a person does in a group for the team (seed 002): they count as the team's own
    (moderation leaves them be, lurker removal never touches them)."""

    OWNER = "owner"  # 群主
    PRESENTER = "presenter"  # 主讲
    EXPERT = "expert"  # 专家 / KOL
    ATMOSPHERE = "atmosphere"  # 托儿（氛围组）
    ADVISOR = "advisor"  # 顾问


DEFAULT_CAPACITY = 500
PLACEHOLDER = "planned:"


def is_placeholder(external_id: str) -> bool:
    """A planned group made before its chat exists carries ``planned:<n>`` as its id."""
    return external_id.startswith(PLACEHOLDER)


INVITATION_PREFIX = "yq"  # a member's personal invitation code: yq<group>m<member number>

_S = GroupState
# where a state may go; a closed group stays closed (its history is analytics now)
TRANSITIONS: Mapping[GroupState, frozenset[GroupState]] = {
    _S.PLANNED: frozenset({_S.RECRUITING, _S.ACTIVE, _S.CLOSED}),
    _S.RECRUITING: frozenset({_S.ACTIVE, _S.DISSOLVING}),
    _S.ACTIVE: frozenset({_S.COOLING, _S.DISSOLVING}),
    _S.COOLING: frozenset({_S.ACTIVE, _S.DISSOLVING}),
    _S.DISSOLVING: frozenset({_S.ACTIVE, _S.CLOSED}),  # back: the dissolution called off
    _S.CLOSED: frozenset(),
}


class LifecycleError(InvalidValue):
    """A state change the lifecycle does not allow; the message says which ones it does."""


def check_transition(old: str, new: str) -> GroupState:
    """``new`` as a state, if a group in ``old`` may move there; else LifecycleError."""
    try:
        target = GroupState(new)
    except ValueError:
        raise LifecycleError("state: one of {choices}", choices=Terms(
            "gstate", (s.value for s in GroupState))) from None
    current = GroupState(old)
    if target == current:
        return target
    allowed = TRANSITIONS[current]
    if target not in allowed:
        if not allowed:
            raise LifecycleError("a {old} group cannot change state", old=Term("gstate", old))
        raise LifecycleError(
            "a {old} group cannot become {new}; it can become: {allowed}",
            old=Term("gstate", old), new=Term("gstate", new), allowed=Terms(
                "gstate", (s.value for s in GroupState if s in allowed)))
    return target


def next_states(state: str) -> list[str]:
    """Where a group in ``state`` may be moved by hand, in the lifecycle's order."""
    allowed = TRANSITIONS[GroupState(state)]
    return [s.value for s in GroupState if s in allowed]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a group cools (fewer than ``speakers`` people speak a day for ``days`` days
    running, or — with ``health`` — its health score over those days is under it) and
    recovers (``speakers`` or more on each of the last ``recover_days``, and its health back
    at ``health`` or above)."""

    speakers: int = 3
    days: int = 7
    recover_days: int = 2
    health: int = 0  # a health score (0–100) under which the group cools; 0: not judged

    @classmethod
    def of(cls, settings: Mapping[str, object] | None) -> Thresholds:
        raw = (settings or {}).get("lifecycle") or {}
        assert isinstance(raw, Mapping)
        return cls(**{str(k): int(str(v)) for k, v in raw.items()
                      if k in ("speakers", "days", "recover_days", "health")})


@dataclass(frozen=True, slots=True)
class GroupFacts:
    """What the lifecycle rules read about one group."""

    state: str
    members: int
    capacity: int
    open_code: bool  # a join code for it is handing out entries
    speakers_per_day: Sequence[int]  # oldest first, ending today (local days)
    starts_at: datetime | None = None
    has_chat: bool = True  # a planned group may not have its chat yet
    health: float | None = None  # its health score over the cooling window (when judged)


def automatic(facts: GroupFacts, thresholds: Thresholds, now: datetime
              ) -> tuple[GroupState, str] | None:
    """The state the rules move a group to, and why in a few words; None: stay."""
    state = GroupState(facts.state)
    if state == _S.PLANNED and facts.has_chat and facts.open_code:
        return _S.RECRUITING, "join_code_open"
    if state == _S.RECRUITING:
        if facts.members >= facts.capacity:
            return _S.ACTIVE, "full"
        if facts.starts_at is not None and facts.starts_at <= now:
            return _S.ACTIVE, "started"
    days = facts.speakers_per_day
    unhealthy = (thresholds.health > 0 and facts.health is not None
                 and facts.health < thresholds.health)
    if state == _S.ACTIVE and len(days) >= thresholds.days:
        if all(n < thresholds.speakers for n in days[-thresholds.days:]):
            return _S.COOLING, "quiet"
        if unhealthy:
            return _S.COOLING, "unhealthy"
    if (state == _S.COOLING and len(days) >= thresholds.recover_days and not unhealthy
            and all(n >= thresholds.speakers for n in days[-thresholds.recover_days:])):
        return _S.ACTIVE, "recovered"
    return None


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


def invitation_code(group_id: int, member_number: int) -> str:
    """The channel of a member's personal invitation code to a group (F9's invitation-only
    gate lets in whoever came through one)."""
    return f"{INVITATION_PREFIX}{group_id}m{member_number}"


def inviter_number(channel: str) -> int | None:
    """The member number behind a personal code — an invitation code or a fission
    participant's code (both ``<prefix><id>m<number>``); None for any other channel."""
    found = split_code(channel, INVITATION_PREFIX) or split_code(channel, CODE_PREFIX)
    return found[1] if found else None

def gini(values: Sequence[int]) -> float:
    """How unevenly a group talks: 0 = everyone equally, 1 = one person does all of it
    (the health report's and the rehearsal's calibration's measure)."""
    n = len(values)
    total = sum(values)
    if n == 0 or total == 0:
        return 0.0
    ordered = sorted(values)
    weighted = sum((i + 1) * v for i, v in enumerate(ordered))
    return (2 * weighted) / (n * total) - (n + 1) / n
