"""Blacklist (F4): who is barred, why, by whom, until when.

Blacklisting removes the member from every group they are in, through the outbox (a staff
task where the platform cannot remove), once per entry and group; while a removal waits,
the engine's blacklist rule ignores their messages, and a blacklisted member who joins a
group is removed again. ``ensure_may_enrol`` refuses them for new activities. Both ends are
member events (``blacklisted``, ``unblacklisted``), so segments and rule tags see them. Rows
are never deleted: lifting one keeps who lifted it and when.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from qunyun.adapters.storage.tables import (
    blacklist,
    groups,
    members,
    memberships,
)
from qunyun.clock import utcnow
from qunyun.domain.actions import CapabilityLookup, RemoveMember
from qunyun.domain.groups import GroupState
from qunyun.domain.history import MemberEventKind
from qunyun.domain.staff import Permission
from qunyun.engine.rules.blacklist import removal_key
from qunyun.services import audit, history, outbox
from qunyun.services.errors import Conflict, InvalidInput, NotFound, ServiceError
from qunyun.services.segments import active_blacklist
from qunyun.services.users import Actor

BLACKLISTED = MemberEventKind.BLACKLISTED
UNBLACKLISTED = MemberEventKind.UNBLACKLISTED


class Refused(ServiceError):
    """An operation refused because of the member's standing (e.g. blacklisted)."""

    status_code = 409


def active_entry(conn: Connection, member_id: int, at: datetime) -> dict[str, Any] | None:
    row = conn.execute(select(blacklist).where(blacklist.c.member_id == member_id,
                                               active_blacklist(at))
                       .order_by(blacklist.c.added_at.desc())).mappings().first()
    return dict(row) if row else None


def listed_members(conn: Connection) -> set[int]:
    """Members with an entry not lifted (an expired one included): the only members whose
    ``active_entry`` can be something (ingest reads this once per batch)."""
    return set(conn.execute(select(blacklist.c.member_id).distinct()
                            .where(blacklist.c.lifted_at.is_(None))).scalars())


def is_blacklisted(conn: Connection, member_id: int, at: datetime) -> bool:
    return active_entry(conn, member_id, at) is not None


def barred_among(conn: Connection, member_ids: Sequence[int], at: datetime) -> set[int]:
    """Which of ``member_ids`` are blacklisted at ``at`` (a query per 500)."""
    ids = sorted(set(member_ids))
    return {int(m) for start in range(0, len(ids), 500) for m in conn.execute(
        select(blacklist.c.member_id).where(blacklist.c.member_id.in_(ids[start:start + 500]),
                                            active_blacklist(at))).scalars()}


def enrol_refusals(conn: Connection, member_ids: Sequence[int], at: datetime) -> dict[int, str]:
    """Why each blacklisted member among ``member_ids`` may not enrol (one query)."""
    reasons: dict[int, str] = {}
    for start in range(0, len(member_ids), 500):
        for entry in conn.execute(select(blacklist).where(
                blacklist.c.member_id.in_(member_ids[start:start + 500]), active_blacklist(at))
                .order_by(blacklist.c.added_at)).mappings():  # the latest entry wins
            until = f" until {entry['expires_at']:%Y-%m-%d}" if entry["expires_at"] else ""
            reasons[entry["member_id"]] = f"member is blacklisted{until}: {entry['reason']}"
    return reasons


def ensure_may_enrol(conn: Connection, *, member_id: int, at: datetime) -> None:
    """Raise Refused (with the reason) when a blacklisted member tries to enrol."""
    reason = enrol_refusals(conn, [member_id], at).get(member_id)
    if reason is not None:
        raise Refused(reason)


@dataclass(frozen=True, slots=True)
class Blacklisted:
    id: int  # the entry
    outbox_ids: list[int]  # the removals from the groups they are in

    @property
    def removals(self) -> int:
        return len(self.outbox_ids)


def do_blacklist(conn: Connection, *, actor: Actor, member_id: int, reason: str,
                 capabilities: CapabilityLookup, expires_at: datetime | None = None,
                 decision_id: int | None = None, group_id: int | None = None) -> Blacklisted:
    """Bar a member and remove them from every group they are in (``group_id``: where it
    happened, when a moderation decision did it)."""
    actor.require(Permission.OPERATE)
    reason = reason.strip()
    if not reason:
        raise InvalidInput("reason: say why the member is blacklisted")
    now = utcnow()
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("expires_at: must be in the future")
    if conn.execute(select(members.c.id).where(members.c.id == member_id)).first() is None:
        raise NotFound("member {member_id} not found", member_id=member_id)
    if is_blacklisted(conn, member_id, now):
        raise Conflict("member is already blacklisted")
    entry_id = int(conn.execute(blacklist.insert().values(
        member_id=member_id, reason=reason, added_by=actor.label, added_at=now,
        expires_at=expires_at, decision_id=decision_id).returning(blacklist.c.id)).scalar_one())
    _history(conn, member_id, BLACKLISTED, group_id, now, {
        "entry": entry_id, "reason": reason, "by": actor.label, "decision": decision_id})
    removals = _remove_everywhere(conn, member_id=member_id, entry_id=entry_id, reason=reason,
                                  capabilities=capabilities, now=now)
    audit.record(conn, actor=actor.label, action="member.blacklist", object_type="member",
                 object_id=member_id, detail={"reason": reason,
                                              "expires_at": expires_at.isoformat()
                                              if expires_at else None,
                                              "removals": len(removals),
                                              "decision": decision_id})
    return Blacklisted(entry_id, removals)


def _history(conn: Connection, member_id: int, kind: str, group_id: int | None, at: datetime,
             data: dict[str, Any]) -> None:
    history.append(conn, kind=kind, member_id=member_id, group_id=group_id, at=at, data=data)


def _remove_everywhere(conn: Connection, *, member_id: int, entry_id: int, reason: str,
                       capabilities: CapabilityLookup, now: datetime) -> list[int]:
    """A removal per open group the member is in, once per entry and group."""
    rows = conn.execute(
        select(groups.c.id, groups.c.platform).join(memberships,
                                                    memberships.c.group_id == groups.c.id)
        .where(memberships.c.member_id == member_id, memberships.c.left_at.is_(None),
               groups.c.state != GroupState.CLOSED.value)
        .group_by(groups.c.id, groups.c.platform).order_by(groups.c.id)).all()
    ids: list[int] = []
    for group_id, platform in rows:
        ids += outbox.enqueue(conn, platform=platform, actions=[("blacklist", RemoveMember(
            group_id=group_id, member_id=member_id, reason=reason, blacklisted=True,
            key=removal_key(entry_id, group_id)))], capabilities=capabilities(platform),
            key_prefix=f"blacklist:{entry_id}", now=now)
    return ids


def do_lift(conn: Connection, *, actor: Actor, member_id: int, reason: str = "") -> None:
    actor.require(Permission.OPERATE)
    now = utcnow()
    entry = active_entry(conn, member_id, now)
    if entry is None:
        raise NotFound("member is not blacklisted")
    lift_entry(conn, actor=actor, entry=entry, reason=reason, now=now)


def lift_entry(conn: Connection, *, actor: Actor, entry: dict[str, Any], reason: str,
               now: datetime) -> None:
    """End one entry (a person lifting it, or an overturned decision that made it)."""
    conn.execute(update(blacklist).where(blacklist.c.id == entry["id"])
                 .values(lifted_at=now, lifted_by=actor.label))
    _history(conn, entry["member_id"], UNBLACKLISTED, None, now,
             {"entry": entry["id"], "reason": reason, "by": actor.label})
    audit.record(conn, actor=actor.label, action="member.unblacklist", object_type="member",
                 object_id=entry["member_id"], detail={"entry": entry["id"], "reason": reason})


def list_blacklist(conn: Connection, *, actor: Actor, active_only: bool = True,
                   limit: int = 200) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    stmt = (select(blacklist, members.c.number, members.c.display_name)
            .join(members, members.c.id == blacklist.c.member_id)
            .order_by(blacklist.c.added_at.desc()).limit(limit))
    if active_only:
        stmt = stmt.where(active_blacklist(utcnow()))
    return [dict(r) for r in conn.execute(stmt).mappings()]


def member_blacklist_history(conn: Connection, member_id: int) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(
        select(blacklist).where(blacklist.c.member_id == member_id)
        .order_by(blacklist.c.added_at.desc())).mappings()]
