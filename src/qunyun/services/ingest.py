"""``do_ingest_event``: one platform event, stored and evaluated in one transaction.

Dedupe by (platform, external_event_id) → upsert group/member/membership → append
member_events → pure rule evaluation → outbox rows. A replayed event changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select, update

from qunyun.adapters.platforms.base import ParseError, PlatformAdapter
from qunyun.adapters.storage.sql import insert_ignore
from qunyun.adapters.storage.tables import (
    groups,
    inbound_events,
    messages,
)
from qunyun.clock import Clock, utcnow
from qunyun.domain.actions import Action, Capability, CapabilityLookup
from qunyun.domain.events import (
    ChatRef,
    ContactChanged,
    DomainEvent,
    GroupNotice,
    GroupRenamed,
    GroupUpdated,
    JoinRequested,
    MemberJoined,
    MemberLeft,
    MessageEdited,
    MessagePosted,
    MessageRecalled,
    PersonRef,
    PrivateMessageReceived,
    ScheduleFired,
)
from qunyun.domain.groups import GroupState
from qunyun.domain.history import leave_kind
from qunyun.domain.staff import Permission
from qunyun.engine import (
    EntryFacts,
    Evaluation,
    GroupFacts,
    MemberFacts,
    Rule,
    RuleContext,
    evaluate,
    freshness,
)
from qunyun.engine.automation import AutomationSnapshot
from qunyun.services import (
    automation,
    blacklist,
    entry,
    fission,
    group_roles,
    history,
    outbox,
    tags,
)
from qunyun.services import members as members_service
from qunyun.services import memberships as memberships_service
from qunyun.services import messages as chat_messages
from qunyun.services.errors import InvalidInput
from qunyun.services.groups import upsert_group
from qunyun.services.members import ResolvedMember, resolve_member, shown_name
from qunyun.services.users import Actor

# work a scheduled job does beyond the rules (a playbook step or broadcast fanning out to
# many groups or members): called in the ingest transaction, returns the outbox ids it made
ScheduledHandler = Callable[[Connection, ScheduleFired, "IngestConfig", datetime], list[int]]


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """What ingest needs from the runtime: the rules and each platform's capabilities."""

    rules: Sequence[Rule]
    capabilities: CapabilityLookup
    timezone: str = "Asia/Shanghai"
    automation: automation.AutomationCache = field(default_factory=automation.AutomationCache)
    scheduled: Mapping[str, ScheduledHandler] = field(default_factory=dict)
    public_url: str = ""  # links handed to people (an applicant's upload link)


# history applied without running rules (imports, rosters): it happened, nobody is greeted
NO_RULES = IngestConfig(rules=(), capabilities=lambda platform: frozenset())


@dataclass
class IngestResult:
    inbound_event_id: int | None
    duplicate: bool
    group_id: int | None = None
    member_id: int | None = None
    outbox_ids: list[int] = field(default_factory=list)
    rules_fired: tuple[str, ...] = ()
    rule_errors: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()  # actions not taken: the event was too old to answer


# events that leave the group's row as it was (its name, owner, admins, settings)
_KEEP_GROUP_ROW = (MessagePosted, MessageEdited, MessageRecalled, MemberJoined, MemberLeft,
                   JoinRequested, PrivateMessageReceived)


@dataclass
class IngestBatch:
    """What a worker's batch of events reads once instead of once per event: the automation
    snapshot and rule tags (a change made meanwhile applies from the next batch, as if the
    batch had arrived a moment earlier) and the groups' rows, dropped after any event that
    may change a group. One per transaction: a batch rolled back starts a new one."""

    snapshot: AutomationSnapshot | None = None
    rule_tags: list[dict[str, Any]] | None = None
    group_ids: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    group_rows: dict[int, Mapping[str, Any]] = field(default_factory=dict)
    # members with a blacklist entry not lifted (maybe expired): only they are looked up
    listed: set[int] | None = None
    # what a run of messages changes that no rule reads (when members were last seen, their
    # message totals, their memberships' first and last message times): written once by
    # ``flush``, before anything that reads them (rule tags, another kind of event, the end)
    seen: dict[int, datetime] = field(default_factory=dict)
    said: Counter[int] = field(default_factory=Counter)
    spans: dict[tuple[int, int], tuple[datetime, datetime]] = field(default_factory=dict)
    # fission campaigns' settings a credited join reads (by campaign id; None: not found)
    campaigns: dict[int, Any] = field(default_factory=dict)
    # credited joins' invites, written together by ``flush_invites``: a run of joins (a
    # recruiting burst) is one statement; anything but a join or a message (a leave reads
    # the invites) writes them first, and so does the end of the batch
    invites: list[dict[str, Any]] = field(default_factory=list)
    # the members holding a role in each group (read once per batch: staff to the rules)
    roles: dict[int, frozenset[int]] = field(default_factory=dict)

    def role_holders(self, conn: Connection, group_id: int) -> frozenset[int]:
        if group_id not in self.roles:
            self.roles[group_id] = group_roles.holders(conn, group_id)
        return self.roles[group_id]

    def flush(self, conn: Connection) -> None:
        """Everything deferred (the end of the batch, or before what reads it)."""
        self.flush_counts(conn)
        self.flush_invites(conn)

    def flush_counts(self, conn: Connection) -> None:
        members_service.note_seen_many(conn, self.seen)
        chat_messages.add_totals(conn, self.said)
        memberships_service.note_message_times_many(conn, self.spans)
        self.seen, self.said, self.spans = {}, Counter(), {}

    def flush_invites(self, conn: Connection) -> None:
        if self.invites:
            fission.record_invites(conn, self.invites)
            self.invites = []

    def spoke(self, member_id: int, group_id: int, at: datetime) -> None:
        first, last = self.spans.get((member_id, group_id), (at, at))
        self.spans[(member_id, group_id)] = (min(first, at), max(last, at))

    def automation(self, conn: Connection, config: IngestConfig) -> AutomationSnapshot:
        if self.snapshot is None:
            self.snapshot = config.automation.get(conn)
        return self.snapshot

    def tags(self, conn: Connection) -> list[dict[str, Any]]:
        if self.rule_tags is None:
            self.rule_tags = tags.load_rule_tags(conn)
        return self.rule_tags

    def group_id(self, conn: Connection, *, platform: str, chat: ChatRef, at: datetime) -> int:
        key = (platform, chat.external_id)
        known = self.group_ids.get(key)
        if known is None:  # the whole row at once: the rule context reads it next
            row = conn.execute(select(groups).where(
                groups.c.platform == platform, groups.c.external_id == chat.external_id)
            ).mappings().first()
            if row is not None:
                known = self.group_ids[key] = (int(row["id"]), str(row["name"]))
                self.group_rows[known[0]] = dict(row)
        if known is not None and (not chat.name or chat.name == known[1]):
            return known[0]
        group_id = upsert_group(conn, platform=platform, chat=chat, at=at)  # new or renamed
        self.group_ids[key] = (group_id, chat.name)
        self.group_rows.pop(group_id, None)
        return group_id

    def group_row(self, conn: Connection, group_id: int) -> Mapping[str, Any]:
        row = self.group_rows.get(group_id)
        if row is not None:
            return row
        fresh = dict(conn.execute(select(groups).where(groups.c.id == group_id))
                     .mappings().one())
        self.group_rows[group_id] = fresh
        return fresh

    def barred(self, conn: Connection, member_id: int, at: datetime) -> dict[str, Any] | None:
        """The member's blacklist entry in force at ``at``, if any."""
        if self.listed is None:
            self.listed = blacklist.listed_members(conn)
        return blacklist.active_entry(conn, member_id, at) if member_id in self.listed else None

    def after(self, event: DomainEvent, *, effects: bool) -> None:
        if effects:  # a rule's effect may have blacklisted someone
            self.listed = None
        if not isinstance(event, _KEEP_GROUP_ROW):
            self.after_change()

    def after_change(self) -> None:
        """Something other than an event changed groups (a chat that got a new id)."""
        self.group_ids.clear()
        self.group_rows.clear()
        self.listed = None


@dataclass
class _Touched:
    group_id: int | None = None
    member: ResolvedMember | None = None
    inviter: ResolvedMember | None = None
    joins_in_group: int = 0
    staff: bool = False  # the platform says the member is one of the team's own staff
    inviter_staff: bool = False
    request: entry.OpenRequest | None = None  # the join request the event is about
    # what a fission campaign tells an inviter about this join or leave (services decide)
    told: list[tuple[str, Action]] = field(default_factory=list)


def do_ingest_event(conn: Connection, event: DomainEvent, *, config: IngestConfig,
                    received_at: datetime | None = None,
                    batch: IngestBatch | None = None) -> IngestResult:
    """``batch``: shared by the events of one transaction (a worker's batch of callbacks)."""
    received_at = received_at or utcnow()
    if batch is None:  # one event alone: what it defers is written before it returns
        batch = IngestBatch()
        result = do_ingest_event(conn, event, config=config, received_at=received_at,
                                 batch=batch)
        batch.flush(conn)
        return result
    if not isinstance(event, MessagePosted):
        batch.flush_counts(conn)
        if not isinstance(event, MemberJoined):
            batch.flush_invites(conn)
    inbound_id = insert_ignore(conn, inbound_events, {
        "platform": event.platform, "external_event_id": event.external_event_id,
        "event_kind": event.kind, "received_at": received_at, "occurred_at": event.occurred_at,
        "status": "processed", "rules_fired": [], "rule_errors": [],
    }, ["platform", "external_event_id"])
    if inbound_id is None:
        return IngestResult(inbound_event_id=None, duplicate=True)

    touched = _apply(conn, event, int(inbound_id), batch, config.capabilities(event.platform),
                     received_at)
    # no rules (history from an import, a replay): no context to read, nothing to decide
    snapshot = batch.automation(conn, config) if config.rules else None
    evaluation = (evaluate(event, _context(conn, event, touched, config, received_at,
                                           snapshot, batch), config.rules)
                  if snapshot is not None else Evaluation((), (), ()))
    effects = [(r, a) for r, a in evaluation.actions if a.internal]
    effect_ids = automation.apply_effects(
        conn, effects, key=str(inbound_id), inbound_id=int(inbound_id), at=event.occurred_at,
        capabilities=config.capabilities) if effects else []
    # rule tags last: what the rules recorded (a check-in, a flagged ad) counts at once
    touched_members = [m.id for m in (touched.member, touched.inviter) if m is not None]
    if touched_members and batch.tags(conn):
        batch.flush(conn)  # rule tags read what the batch deferred
        tags.apply_rule_tags(conn, touched_members,
                             Clock(received_at, ZoneInfo(config.timezone)),
                             rule_tags=batch.tags(conn))
    outward = [(r, a) for r, a in evaluation.actions if not a.internal] + touched.told
    stale: list[tuple[str, Action]] = []
    # what answers a platform event goes stale; a scheduled job's sends are pushes, due
    # whenever the job fires (a coalesced run after downtime included)
    window = (snapshot.team.freshness if snapshot is not None
              and not isinstance(event, ScheduleFired) else None)
    if outward and window is not None:
        # an event that arrives late is recorded and counted above, never answered
        outward, stale = freshness.split_stale(outward, received_at - event.occurred_at,
                                               window)
    outbox_ids = outbox.enqueue(
        conn, platform=event.platform, actions=outward,
        capabilities=config.capabilities(event.platform),
        key_prefix=f"{event.platform}:{event.external_event_id}", now=received_at,
        inbound_event_id=int(inbound_id), event_at=event.occurred_at,
        freshness=window) + effect_ids
    if isinstance(event, ScheduleFired) and (handler := config.scheduled.get(event.job_kind)):
        outbox_ids += handler(conn, event, config, received_at)
    batch.after(event, effects=bool(effects))
    errors = tuple(f"{e.rule}: {e.error}" for e in evaluation.errors)
    if evaluation.fired or errors or stale:
        conn.execute(update(inbound_events).where(inbound_events.c.id == inbound_id).values(
            rules_fired=list(evaluation.fired), rule_errors=list(errors),
            stale_actions=len(stale)))
    return IngestResult(
        inbound_event_id=int(inbound_id), duplicate=False, group_id=touched.group_id,
        member_id=touched.member.id if touched.member else None, outbox_ids=outbox_ids,
        rules_fired=evaluation.fired, rule_errors=errors,
        stale=tuple(a.type_name for _r, a in stale))


def _member_event(conn: Connection, *, kind: str, member_id: int | None, group_id: int | None,
                  at: datetime, inbound_id: int, actor_id: int | None = None,
                  data: dict[str, Any] | None = None) -> None:
    history.append(conn, kind=kind, member_id=member_id, group_id=group_id, at=at, data=data,
                   actor_id=actor_id, inbound_id=inbound_id)


def _apply(conn: Connection, event: DomainEvent, inbound_id: int,
           batch: IngestBatch, can: frozenset[Capability], received_at: datetime) -> _Touched:
    """Store the facts of one event; returns what the rule context needs to know. ``can``:
    the platform's capabilities (how a fission inviter is told of a leave)."""
    at = event.occurred_at
    touched = _Touched()
    chat: ChatRef | None = getattr(event, "chat", None)
    if chat is not None:
        touched.group_id = batch.group_id(conn, platform=event.platform, chat=chat, at=at)

    def member(ref: PersonRef) -> ResolvedMember:
        return resolve_member(conn, platform=event.platform, ref=ref, at=at, seen=batch.seen)

    match event:
        case MemberJoined():
            assert touched.group_id is not None
            touched.member = member(event.member)
            touched.staff = event.member.staff
            touched.inviter = member(event.inviter) if event.inviter else None
            touched.inviter_staff = bool(event.inviter and event.inviter.staff)
            # a member first seen in this event has no history to look up
            new = touched.member.created
            already_in = None if new else memberships_service.open_id(conn, touched.member.id,
                                                                touched.group_id)
            if already_in is None:
                memberships_service.add_joined(
                    conn, member_id=touched.member.id, group_id=touched.group_id, at=at,
                    scene=event.scene.value, channel=event.channel,
                    inviter_id=touched.inviter.id if touched.inviter else None,
                    left_at=None if new else memberships_service.later_leave(
                        conn, touched.member.id, touched.group_id, at))
            _member_event(conn, kind="joined", member_id=touched.member.id,
                          group_id=touched.group_id, at=at, inbound_id=inbound_id,
                          actor_id=touched.inviter.id if touched.inviter else None,
                          data={"scene": event.scene.value, "channel": event.channel})
            entry.close_on_join(conn, group_id=touched.group_id,
                                member_id=touched.member.id, at=at)
            # a join notice for someone already in the group counts as one more join
            touched.joins_in_group = 1 if new else (
                memberships_service.join_count(conn, touched.member.id, touched.group_id)
                + (already_in is not None))
            if event.channel:  # through a participant's code: their invite
                fission.note_join(
                    conn, group_id=touched.group_id, member_id=touched.member.id,
                    channel=event.channel, rejoin=touched.joins_in_group > 1, at=at,
                    received_at=received_at,
                    barred=not new and batch.barred(conn, touched.member.id, at) is not None,
                    campaigns=batch.campaigns, defer=batch.invites)
        case MemberLeft():
            assert touched.group_id is not None
            touched.member = member(event.member)
            by = member(event.by) if event.by else None
            memberships_service.close(conn, member_id=touched.member.id, group_id=touched.group_id,
                                at=at, scene=event.scene.value)
            touched.told = fission.note_leave(conn, group_id=touched.group_id,
                                              member_id=touched.member.id, at=at,
                                              can=can)
            _member_event(conn, kind=leave_kind(event),
                          member_id=touched.member.id, group_id=touched.group_id, at=at,
                          inbound_id=inbound_id, actor_id=by.id if by else None,
                          data={"scene": event.scene.value})
        case MessagePosted():
            assert touched.group_id is not None
            touched.member = member(event.sender)
            touched.staff = event.sender.staff
            if touched.member.created or memberships_service.open_id(
                    conn, touched.member.id, touched.group_id) is None:
                memberships_service.add_implied(conn, member_id=touched.member.id,
                                          group_id=touched.group_id, at=at)
            chat_messages.record(conn, group_id=touched.group_id, member_id=touched.member.id,
                                 message_id=event.message_id, at=at,
                                 message_type=event.message_type, text=event.text,
                                 totals=batch.said)
            batch.spoke(touched.member.id, touched.group_id, at)
        case MessageEdited():
            assert touched.group_id is not None
            touched.member = member(event.sender)
            touched.staff = event.sender.staff
            chat_messages.edit(conn, group_id=touched.group_id, message_id=event.message_id,
                               text=event.text)
        case MessageRecalled():
            assert touched.group_id is not None
            touched.member = member(event.sender)
            conn.execute(update(messages).where(
                messages.c.group_id == touched.group_id,
                messages.c.platform_message_id == event.message_id).values(recalled=True))
            _member_event(conn, kind="recalled", member_id=touched.member.id,
                          group_id=touched.group_id, at=at, inbound_id=inbound_id,
                          data={"message_id": event.message_id})
        case GroupRenamed():
            assert touched.group_id is not None
            by = member(event.by) if event.by else None
            conn.execute(update(groups).where(groups.c.id == touched.group_id)
                         .values(name=event.new_name, updated_at=at))
            _member_event(conn, kind="group_renamed", member_id=None, group_id=touched.group_id,
                          at=at, inbound_id=inbound_id, actor_id=by.id if by else None,
                          data={"new_name": event.new_name})
        case GroupNotice():
            assert touched.group_id is not None
            touched.member = member(event.actor)
            _member_event(conn, kind=event.notice, member_id=touched.member.id,
                          group_id=touched.group_id, at=at, inbound_id=inbound_id,
                          data={"targets": list(event.targets)})
        case GroupUpdated():
            assert touched.group_id is not None
            values: dict[str, Any] = {}
            if event.owner is not None:
                values["owner_member_id"] = member(event.owner).id
            if event.announcement is not None:
                values["announcement"] = event.announcement
            if event.admins is not None or event.admins_added or event.admins_removed:
                current = dict(conn.execute(select(groups.c.settings).where(
                    groups.c.id == touched.group_id)).scalar() or {})
                admins = ({member(a).id for a in event.admins} if event.admins is not None
                          else {int(i) for i in current.get("admins", [])})
                admins |= {member(a).id for a in event.admins_added}
                admins -= {member(a).id for a in event.admins_removed}
                values["settings"] = {**current, "admins": sorted(admins)}
            if event.dismissed:
                values["state"] = GroupState.CLOSED.value
                _member_event(conn, kind="group_dismissed", member_id=None,
                              group_id=touched.group_id, at=at, inbound_id=inbound_id)
            if values:
                conn.execute(update(groups).where(groups.c.id == touched.group_id)
                             .values(**values, updated_at=at))
        case ContactChanged():
            touched.member = member(event.member)
            _member_event(conn, kind=f"contact_{event.change.value}",
                          member_id=touched.member.id, group_id=None, at=at,
                          inbound_id=inbound_id,
                          data={"staff": event.staff_id, "channel": event.channel,
                                **dict(event.detail)})
        case JoinRequested():
            assert touched.group_id is not None
            touched.member = member(event.member)
            touched.request = entry.note_request(
                conn, group_id=touched.group_id, member_id=touched.member.id, at=at,
                channel=event.channel, bio=event.bio, inbound_id=inbound_id)
        case PrivateMessageReceived():
            touched.member = member(event.sender)
            touched.request = entry.note_answer(conn, member_id=touched.member.id,
                                                text=event.text, at=at)
        case ScheduleFired():
            if event.group_external_id:
                touched.group_id = conn.execute(select(groups.c.id).where(
                    groups.c.platform == event.platform,
                    groups.c.external_id == event.group_external_id)).scalar()
    return touched


def _context(conn: Connection, event: DomainEvent, touched: _Touched, config: IngestConfig,
             now: datetime, snapshot: AutomationSnapshot, batch: IngestBatch) -> RuleContext:
    group_facts = None
    staff_ids: set[int] = set()
    if touched.group_id is not None:
        g = batch.group_row(conn, touched.group_id)
        settings = dict(g["settings"] or {})
        group_facts = GroupFacts(id=g["id"], name=g["name"], platform=g["platform"],
                                 group_type=g["group_type"], rules_text=g["rules_text"],
                                 settings=settings)
        staff_ids = {int(i) for i in settings.get("admins", [])}
        staff_ids |= batch.role_holders(conn, touched.group_id)
        if g["owner_member_id"] is not None:
            staff_ids.add(int(g["owner_member_id"]))

    def facts(m: ResolvedMember | None, joins: int = 0) -> MemberFacts | None:
        if m is None:
            return None
        barred = None if m.created else batch.barred(conn, m.id, event.occurred_at)
        return MemberFacts(id=m.id, number=m.number, name=shown_name(m.name, m.number),
                           first_seen=m.created,
                           joins_in_group=joins, blacklisted=barred is not None,
                           blacklist_reason=barred["reason"] if barred else "",
                           blacklist_id=barred["id"] if barred else None,
                           staff=m.id in staff_ids or (m is touched.member and touched.staff)
                           or (m is touched.inviter and touched.inviter_staff))

    extra = automation.Facts()
    if (isinstance(event, MessagePosted) and touched.group_id is not None
            and touched.member is not None):
        extra = automation.gather_facts(
            conn, event=event, group_id=touched.group_id, member_id=touched.member.id,
            settings=snapshot.settings(touched.group_id), tz=ZoneInfo(config.timezone))
    recent_joins = 0
    if isinstance(event, MemberJoined) and touched.group_id is not None:
        mod = snapshot.settings(touched.group_id).moderation
        if mod.enabled:
            recent_joins = memberships_service.joins_between(
                conn, touched.group_id,
                event.occurred_at - timedelta(seconds=mod.join_flood_seconds),
                event.occurred_at)
    gate = None
    if touched.request is not None and touched.member is not None:
        gate_settings = snapshot.settings(touched.request.group_id).entry
        enrolled, deposit = (entry.standing(conn, activity_id=gate_settings.activity_id,
                                            member_id=touched.member.id)
                             if gate_settings.gate == "activity" and gate_settings.activity_id
                             else (False, 0))
        links = entry.gate_facts(
            conn, group_id=touched.request.group_id, channel=touched.request.channel,
            token=touched.request.token, settings=gate_settings,
            can_answer=Capability.ANSWER_JOIN_REQUEST in config.capabilities(event.platform),
            public_url=config.public_url, at=event.occurred_at)
        gate = EntryFacts(request_id=touched.request.id, group_id=touched.request.group_id,
                          status=touched.request.status, repeat=touched.request.repeat,
                          enrolled=enrolled, deposit_fen=deposit,
                          invited_by=links.invited_by, upload_link=links.upload_link,
                          join_link=links.join_link)
    return RuleContext(now=now, timezone=config.timezone, group=group_facts,
                       recent_joins=recent_joins, entry=gate,
                       member=facts(touched.member, touched.joins_in_group),
                       inviter=facts(touched.inviter), automation=snapshot,
                       activity=extra.activity, checkin=extra.checkin,
                       cooldowns=extra.cooldowns, points_today=extra.points_today)


@dataclass
class RawIngestResult:
    duplicate: bool
    skipped: dict[str, int]
    events: int
    outbox_ids: list[int]
    rules_fired: list[str]
    stale: list[str] = field(default_factory=list)


def do_ingest_raw(conn: Connection, *, actor: Actor, adapter: PlatformAdapter,
                  raw: Mapping[str, Any], config: IngestConfig) -> RawIngestResult:
    """One raw payload from a staff API call (sandbox, simulator): parse, then ingest."""
    actor.require(Permission.OPERATE)
    try:
        parsed = adapter.parse(raw)
    except ParseError as exc:
        raise InvalidInput.wrap(exc) from None
    out = RawIngestResult(duplicate=False, skipped=dict(parsed.skipped),
                          events=len(parsed.events), outbox_ids=[], rules_fired=[])
    for event in parsed.events:
        result = do_ingest_event(conn, event, config=config)
        out.duplicate = out.duplicate or result.duplicate
        out.outbox_ids.extend(result.outbox_ids)
        out.rules_fired.extend(result.rules_fired)
        out.stale.extend(result.stale)
    return out
