"""Automation settings, the compiled snapshot the rules read, and the rules' own effects.

* Settings: team defaults (group 0) and per-group overrides, validated, audited; every change
  bumps ``automation_version`` so running processes rebuild their snapshot.
* :class:`AutomationCache`: one snapshot per process, rebuilt when the version moves (one
  small read per event).
* :func:`gather_facts` reads what moderation, check-ins, FAQ cool-downs and points need
  about the sender, and only for rules switched on in that group.
* :func:`apply_effects` applies internal effects (decisions, check-ins, points, cool-downs,
  automatic blacklisting) in the ingest transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select, update

from qunyun.adapters.storage.sql import increment_counter, insert_ignore, upsert_many
from qunyun.adapters.storage.tables import (
    automation_settings,
    checkins,
    counters,
    faqs,
    groups,
    member_events,
    memberships,
    messages,
    moderation_decisions,
    points_ledger,
    rule_cooldowns,
    word_lists,
)
from qunyun.clock import Clock, utcnow
from qunyun.domain.actions import (
    Action,
    AwardPoints,
    BlacklistMember,
    CapabilityLookup,
    NoteCooldown,
    RecordCheckin,
    RecordModeration,
    SettleJoinRequest,
)
from qunyun.domain.automation import (
    SECTIONS,
    AutomationSettings,
    SettingsError,
    merge,
    validate,
)
from qunyun.domain.events import MessagePosted
from qunyun.domain.history import MemberEventKind
from qunyun.domain.staff import Permission
from qunyun.engine.automation import AutomationSnapshot, FaqAnswer
from qunyun.engine.faq import FaqEntry, FaqIndex
from qunyun.engine.moderation import Classifier, WordList, default_model, is_ad
from qunyun.engine.rule import ActivityFacts, CheckinFacts
from qunyun.engine.rules.checkin import is_checkin
from qunyun.services import audit, blacklist, entry, history
from qunyun.services.errors import InvalidInput, NotFound
from qunyun.services.users import SYSTEM, Actor

VERSION_COUNTER = "automation_version"
TEAM = 0
# confirmed/overturned review decisions are the operators' labels for the learned score
CONFIRMED = "confirmed"
OVERTURNED = "overturned"
PENDING = "pending"
VIOLATIONS = ("warn", "mute", "remove", "blacklist")
# the FAQ index answers from this score; each group's own threshold is applied by the rule
_INDEX_FLOOR = 0.3


# --- settings ----------------------------------------------------------------------------


def bump_version(conn: Connection) -> None:
    increment_counter(conn, counters, VERSION_COUNTER, start=0)


def current_version(conn: Connection) -> int:
    return int(conn.execute(select(counters.c.value).where(
        counters.c.name == VERSION_COUNTER)).scalar() or 0)


def _stored(conn: Connection, group_id: int) -> dict[str, Any]:
    value = conn.execute(select(automation_settings.c.settings).where(
        automation_settings.c.group_id == group_id)).scalar()
    return dict(value or {})


def get_settings(conn: Connection, *, actor: Actor, group_id: int = TEAM) -> dict[str, Any]:
    """``effective`` (what the rules use), ``own`` (what this scope stores) and ``team``."""
    actor.require(Permission.VIEW)
    if group_id != TEAM and conn.execute(
            select(groups.c.id).where(groups.c.id == group_id)).first() is None:
        raise NotFound("group {group_id} not found", group_id=group_id)
    team = _stored(conn, TEAM)
    own = team if group_id == TEAM else _stored(conn, group_id)
    effective = validate(merge(team, own) if group_id != TEAM else team)
    return {"group_id": group_id, "own": own, "team": team,
            "effective": effective.model_dump(mode="json")}


# sections that only the team sets (the push planner counts caps across all groups; how old
# an event may be to be answered is one rule for the whole event path)
TEAM_ONLY = ("broadcast", "freshness")


def do_update_settings(conn: Connection, *, actor: Actor, group_id: int = TEAM,
                       section: str, values: dict[str, Any], reset: Sequence[str] = ()
                       ) -> dict[str, Any]:
    """Set fields of one section (``reset`` removes a group's overrides for those fields)."""
    actor.require(Permission.OPERATE)
    if section not in SECTIONS:
        raise InvalidInput("section: one of {sections}", sections=', '.join(SECTIONS))
    if section in TEAM_ONLY and group_id != TEAM:
        raise InvalidInput("{section}: a team setting (it holds for every group); set it "
                           "without a group",
                           section=section)
    current = get_settings(conn, actor=actor, group_id=group_id)
    own = {k: dict(v) for k, v in current["own"].items()}
    part = own.setdefault(section, {})
    part.update(values)
    for name in reset:
        part.pop(name, None)
    try:
        validate(merge(current["team"], own) if group_id != TEAM else own)
        if group_id == TEAM:  # every group's merge must stay valid too
            for row in conn.execute(select(automation_settings.c.settings).where(
                    automation_settings.c.group_id != TEAM)):
                validate(merge(own, dict(row.settings or {})))
    except SettingsError as exc:
        raise InvalidInput.wrap(exc) from None
    upsert_many(conn, automation_settings, [{
        "group_id": group_id, "settings": own, "updated_at": utcnow(),
        "updated_by": actor.label}], ["group_id"], ["settings", "updated_at", "updated_by"])
    bump_version(conn)
    audit.record(conn, actor=actor.label, action="automation.settings",
                 object_type="group" if group_id else "team", object_id=group_id,
                 detail={"section": section, "values": values, "reset": list(reset)})
    return get_settings(conn, actor=actor, group_id=group_id)


def effective_settings(conn: Connection, group_id: int | None) -> AutomationSettings:
    """What the rules use for a group (team defaults for ``None``), read from the store."""
    team = _stored(conn, TEAM)
    return validate(merge(team, _stored(conn, group_id)) if group_id else team)


def prior_violations(conn: Connection, *, member_id: int, group_id: int, at: datetime,
                     days: int) -> int:
    """Warnings and removals of a member in a group within ``days`` before ``at`` (an
    overturned decision was no violation)."""
    return int(conn.execute(select(func.count()).select_from(moderation_decisions).where(
        moderation_decisions.c.member_id == member_id,
        moderation_decisions.c.group_id == group_id,
        moderation_decisions.c.action.in_(VIOLATIONS),
        moderation_decisions.c.status != OVERTURNED,
        moderation_decisions.c.created_at > at - timedelta(days=days))).scalar_one())


# --- snapshot ----------------------------------------------------------------------------


def _faq_entries(rows: Sequence[Any]) -> list[FaqEntry]:
    return [FaqEntry(id=str(r.id), questions=tuple(q.strip() for q in r.questions.splitlines()
                                                  if q.strip()),
                     answer=r.answer, match=r.match, pattern=r.pattern) for r in rows]


def build_snapshot(conn: Connection) -> AutomationSnapshot:
    version = current_version(conn)
    stored = {r.group_id: dict(r.settings or {}) for r in conn.execute(select(
        automation_settings.c.group_id, automation_settings.c.settings))}
    team_raw = stored.pop(TEAM, {})
    team = validate(team_raw)
    group_settings = {gid: validate(merge(team_raw, raw)) for gid, raw in stored.items()}
    lists = [WordList(r.name, r.severity, tuple(w.strip() for w in r.words.splitlines()
                                                if w.strip()))
             for r in conn.execute(select(word_lists).where(word_lists.c.enabled.is_(True)))]
    labels = [(r.text, r.status == CONFIRMED) for r in conn.execute(
        select(moderation_decisions.c.text, moderation_decisions.c.status).where(
            moderation_decisions.c.status.in_([CONFIRMED, OVERTURNED])))]
    classifier = Classifier(lists, model=default_model(labels))
    rows = conn.execute(select(faqs).where(faqs.c.enabled.is_(True))
                        .order_by(faqs.c.id)).all()
    shared = [r for r in rows if r.group_id is None]
    per_group: dict[int, list[Any]] = {}
    for r in rows:
        if r.group_id is not None:
            per_group.setdefault(r.group_id, []).append(r)
    answers = {str(r.id): FaqAnswer(r.answer, r.cooldown_seconds) for r in rows}
    return AutomationSnapshot(
        version=version, team=team, classifier=classifier,
        faq=FaqIndex(_faq_entries(shared), min_score=_INDEX_FLOOR),
        group_settings=group_settings,
        group_faq={gid: FaqIndex(_faq_entries(shared + extra), min_score=_INDEX_FLOOR)
                   for gid, extra in per_group.items()},
        answers=answers)


@dataclass
class AutomationCache:
    """The process's snapshot; rebuilt when the stored version differs."""

    _snapshot: AutomationSnapshot | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, conn: Connection) -> AutomationSnapshot:
        version = current_version(conn)
        snap = self._snapshot
        if snap is not None and snap.version == version:
            return snap
        with self._lock:
            snap = build_snapshot(conn)
            self._snapshot = snap
        return snap


# --- facts for the rules -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Facts:
    activity: ActivityFacts | None = None
    checkin: CheckinFacts | None = None
    cooldowns: dict[str, datetime] = field(default_factory=dict)
    points_today: int = 0


def gather_facts(conn: Connection, *, event: MessagePosted, group_id: int, member_id: int,
                 settings: AutomationSettings, tz: ZoneInfo) -> Facts:
    at = event.occurred_at
    activity = checkin = None
    cooldowns: dict[str, datetime] = {}
    points_today = 0
    mod = settings.moderation
    if mod.enabled:
        recent = conn.execute(select(func.count()).select_from(messages).where(
            messages.c.group_id == group_id, messages.c.member_id == member_id,
            messages.c.sent_at > at - timedelta(seconds=mod.flood_seconds),
            messages.c.sent_at <= at)).scalar_one()
        own = crowd = 0
        if event.text.strip():
            # who posted this text lately: the sender repeating it, or others saying the same
            for sender, n in conn.execute(
                    select(messages.c.member_id, func.count()).where(
                        messages.c.group_id == group_id, messages.c.text == event.text,
                        messages.c.direction == "in",
                        messages.c.sent_at > at - timedelta(seconds=mod.repeat_seconds),
                        messages.c.sent_at <= at).group_by(messages.c.member_id)):
                if sender == member_id:
                    own = int(n)
                else:
                    crowd += 1
        since = conn.execute(select(memberships.c.joined_at).where(
            memberships.c.member_id == member_id, memberships.c.group_id == group_id,
            memberships.c.left_at.is_(None), memberships.c.join_observed.is_(True))
            .order_by(memberships.c.id.desc()).limit(1)).scalar()
        prior = prior_violations(conn, member_id=member_id, group_id=group_id, at=at,
                                 days=mod.violation_days)
        activity = ActivityFacts(recent_messages=int(recent), own_repeats=own,
                                 crowd_repeats=crowd, member_since=since,
                                 prior_violations=prior)
    # only a message the check-in rule takes for one needs the member's check-ins
    if settings.checkin.enabled and is_checkin(settings.checkin, event.text,
                                               event.message_type):
        # the latest check-in and how many there were, in one round trip (the window counts
        # the rows before LIMIT)
        last = conn.execute(select(checkins.c.day, checkins.c.streak,
                                   func.count().over().label("total")).where(
            checkins.c.group_id == group_id, checkins.c.member_id == member_id)
            .order_by(checkins.c.day.desc()).limit(1)).first()
        checkin = CheckinFacts(last_day=last.day if last else None,
                               last_streak=last.streak if last else 0,
                               total=int(last.total) if last else 0)
    if settings.faq.enabled:
        cooldowns = {r.rule_key: r.last_at for r in conn.execute(select(
            rule_cooldowns.c.rule_key, rule_cooldowns.c.last_at).where(
            rule_cooldowns.c.group_id == group_id))}
    if settings.points.enabled:
        points_today = int(conn.execute(select(func.coalesce(func.sum(
            points_ledger.c.points), 0)).where(
            points_ledger.c.group_id == group_id, points_ledger.c.member_id == member_id,
            points_ledger.c.reason == "message",
            points_ledger.c.at >= Clock(at, tz).day_start(at.astimezone(tz).date())
        )).scalar_one())
    return Facts(activity, checkin, cooldowns, points_today)


# --- effects -----------------------------------------------------------------------------


def apply_effects(conn: Connection, effects: Sequence[tuple[str, Action]], *, key: str,
                  at: datetime, capabilities: CapabilityLookup, inbound_id: int | None = None,
                  actor: Actor = SYSTEM, decision_id: int | None = None) -> list[int]:
    """Apply internal effects; ``key`` (the inbound event, or a review) makes each once.
    ``decision_id``: the moderation decision a reviewer's confirmation carries out. Returns
    the outbox rows the effects made (a blacklist's removals)."""
    outbox_ids: list[int] = []
    for index, (rule, effect) in enumerate(effects):
        ref = f"{key}:{rule}:{index}"
        match effect:
            case RecordModeration():
                decision_id = record_decision(conn, effect, at=at, inbound_id=inbound_id)
            case BlacklistMember():
                if not blacklist.is_blacklisted(conn, effect.member_id, at):
                    until = at + timedelta(days=effect.days) if effect.days else None
                    if until is not None and until <= utcnow():
                        continue  # it would have ended already
                    outbox_ids += blacklist.do_blacklist(
                        conn, actor=actor, member_id=effect.member_id, reason=effect.reason,
                        expires_at=until, capabilities=capabilities, decision_id=decision_id,
                        group_id=effect.group_id).outbox_ids
            case RecordCheckin():
                assert effect.group_id is not None
                record_checkin(conn, group_id=effect.group_id, member_id=effect.member_id,
                               day=effect.day, streak=effect.streak, source=effect.source,
                               message_id=effect.message_id, at=at, inbound_id=inbound_id)
            case AwardPoints():
                insert_ignore(conn, points_ledger, {
                    "group_id": effect.group_id, "member_id": effect.member_id,
                    "points": effect.points, "reason": effect.reason, "ref": ref, "at": at},
                    ["ref"])
            case NoteCooldown():
                assert effect.group_id is not None
                upsert_many(conn, rule_cooldowns, [{
                    "rule_key": effect.key, "group_id": effect.group_id, "last_at": at}],
                    ["rule_key", "group_id"], ["last_at"])
                if effect.key.startswith("faq:"):
                    conn.execute(update(faqs).where(faqs.c.id == int(effect.key[4:]))
                                 .values(hits=faqs.c.hits + 1))
            case SettleJoinRequest():
                assert effect.group_id is not None
                entry.settle(conn, group_id=effect.group_id, member_id=effect.member_id,
                             status=effect.status, reason=effect.reason, at=at)
            case _:
                raise ValueError(f"not an internal effect: {effect.type_name}")
    return outbox_ids


# the member events moderation writes: a message judged an ad, and a violation (a warning or
# removal that counts toward the next step); segments and rule tags read them
AD_FLAGGED = MemberEventKind.AD_FLAGGED
VIOLATION = MemberEventKind.VIOLATION
VIOLATION_OVERTURNED = "violation_overturned"


def record_decision(conn: Connection, effect: RecordModeration, *, at: datetime,
                    inbound_id: int | None = None) -> int:
    """Store a moderation decision and the member events it means; returns its id."""
    decision_id = int(conn.execute(moderation_decisions.insert().values(
        group_id=effect.group_id, member_id=effect.member_id, message_id=effect.message_id,
        text=effect.text, verdict=effect.verdict, score=effect.score,
        reasons=list(effect.reasons), signals=list(effect.signals), action=effect.action,
        status=effect.status, inbound_event_id=inbound_id, created_at=at)
        .returning(moderation_decisions.c.id)).scalar_one())
    if effect.status != PENDING:
        note_decision(conn, decision_id=decision_id, member_id=effect.member_id,
                      group_id=effect.group_id, verdict=effect.verdict, signals=effect.signals,
                      action=effect.action, at=at, inbound_id=inbound_id)
    return decision_id


def note_decision(conn: Connection, *, decision_id: int, member_id: int, group_id: int | None,
                  verdict: str, signals: Sequence[str], action: str, at: datetime,
                  inbound_id: int | None = None) -> None:
    """The member events of a decision taken (by the rule, or a person confirming one)."""
    kinds = ([AD_FLAGGED] if is_ad(verdict, signals) else []) + (
        [VIOLATION] if action in VIOLATIONS else [])
    for kind in kinds:
        history.append(conn, kind=kind, member_id=member_id, group_id=group_id, at=at,
                       data={"decision": decision_id, "action": action},
                       inbound_id=inbound_id)


def retract_decision(conn: Connection, *, decision_id: int, member_id: int) -> None:
    """An overturned decision was no ad and no violation: its member events become
    ``…_overturned`` (kept, not deleted) and the member's counts follow."""
    history.relabel(conn, member_id=member_id, kinds={
        event_id: f"{kind}_overturned" for event_id, kind, data in conn.execute(
            select(member_events.c.id, member_events.c.kind, member_events.c.data).where(
                member_events.c.member_id == member_id,
                member_events.c.kind.in_((AD_FLAGGED, VIOLATION))))
        if (data or {}).get("decision") == decision_id})


def record_checkin(conn: Connection, *, group_id: int, member_id: int, day: str, streak: int,
                   source: str, at: datetime, message_id: str = "",
                   inbound_id: int | None = None) -> bool:
    """Store one check-in (once per member, group and day) and its member event."""
    new = insert_ignore(conn, checkins, {
        "group_id": group_id, "member_id": member_id, "day": day, "at": at, "streak": streak,
        "source": source, "message_id": message_id},
        ["group_id", "member_id", "day"])
    if new is None:
        return False
    history.append(conn, kind=MemberEventKind.CHECKIN, member_id=member_id,
                   group_id=group_id, at=at,
                   data={"day": day, "streak": streak, "source": source},
                   inbound_id=inbound_id)
    return True
