"""Rules: a cheap ``matches`` then ``run``; rules sit in numbered priority groups.

The context is plain data the ingest service gathered before evaluation, so rules stay pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from mypy_extensions import mypyc_attr

from qunyun.domain.actions import Action
from qunyun.domain.events import DomainEvent
from qunyun.engine.triggers import Trigger, always

if TYPE_CHECKING:
    from qunyun.engine.automation import AutomationSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupFacts:
    id: int
    name: str
    platform: str
    group_type: str = ""
    rules_text: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberFacts:
    id: int
    number: int
    name: str
    first_seen: bool = False  # this event created the member
    joins_in_group: int = 0  # how many times they joined this group, this event included
    blacklisted: bool = False
    blacklist_reason: str = ""
    blacklist_id: int | None = None  # the active blacklist entry (removals are once per entry)
    staff: bool = False  # the group's owner or an admin, or one of the team's own staff


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityFacts:
    """What moderation needs to know beyond the message itself (gathered by ingest)."""

    recent_messages: int = 1  # by this member in this group within the flood window
    own_repeats: int = 1  # the same text by this member in this group, repeat window
    crowd_repeats: int = 0  # other members who posted the same text there in the window
    member_since: datetime | None = None  # joined this group at (None: unknown)
    prior_violations: int = 0  # warnings/removals within the violation window


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckinFacts:
    last_day: str | None = None  # team-local YYYY-MM-DD of the latest check-in in this group
    last_streak: int = 0
    total: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryFacts:
    """An open join request the event is about (a request, or an applicant's private
    answer), with what the gate checks: the request's group and status after the event was
    recorded, the applicant's standing in the gate's activity, who invited them, and the
    links the gate hands out."""

    request_id: int
    group_id: int
    status: str
    repeat: bool = False  # asked again while the request was open
    enrolled: bool = False
    deposit_fen: int = 0
    invited_by: str = ""  # the current member whose personal code brought them (name)
    upload_link: str = ""  # where they upload a share's screenshot (share-to-join)
    join_link: str = ""  # the group's join code, where the platform holds no request


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleContext:
    now: datetime
    timezone: str = "Asia/Shanghai"
    group: GroupFacts | None = None
    member: MemberFacts | None = None
    inviter: MemberFacts | None = None
    automation: AutomationSnapshot | None = None
    activity: ActivityFacts | None = None
    checkin: CheckinFacts | None = None
    cooldowns: Mapping[str, datetime] = field(default_factory=dict)
    points_today: int = 0  # message points this member earned today in this group
    # on a join: joins to this group within moderation.join_flood_seconds, this one included
    recent_joins: int = 0
    entry: EntryFacts | None = None  # on a join request or an applicant's private message


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a rule returns: actions, and whether lower-priority groups must not run (Stop)."""

    actions: Sequence[Action] = ()
    stop: bool = False


# compiled with the engine (qunyun.native), and still subclassed by plugins and tests
@mypyc_attr(allow_interpreted_subclasses=True)
class Rule:
    """Subclass and set ``name``, ``priority`` and ``trigger``; override ``run``.

    Lower ``priority`` runs first (moderation at -10 before replies at 0). At most one rule
    fires per priority group: the first, in registration order, whose ``matches`` is not None.
    The trigger's declared kinds (``on(MessagePosted)``) bind ``matches`` too: the dispatcher
    never asks a rule about an event of another kind.
    """

    name: ClassVar[str] = "rule"
    priority: ClassVar[int] = 0
    trigger: Trigger = always

    def matches(self, event: DomainEvent, ctx: RuleContext) -> object | None:
        """Return a match object (anything but None) when the rule applies."""
        return True if self.trigger(event, ctx) else None

    def run(self, event: DomainEvent, ctx: RuleContext, match: object) -> Outcome:
        raise NotImplementedError
