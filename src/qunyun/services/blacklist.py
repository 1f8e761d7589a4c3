"""Blacklist (F4): who is barred, why, by whom, until when.

A blacklisted member who joins a group is removed by the engine's blacklist rule (or a staff
task is raised where the platform cannot remove); ``ensure_may_enrol`` refuses them for new
activities. Rows are never deleted: lifting one keeps who lifted it and when.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from qunyun.adapters.storage.tables import blacklist, members, utcnow
from qunyun.domain.staff import Permission
from qunyun.services import audit
from qunyun.services.errors import Conflict, InvalidInput, NotFound, ServiceError
from qunyun.services.segments import active_blacklist
from qunyun.services.users import Actor


class Refused(ServiceError):
    """An operation refused because of the member's standing (e.g. blacklisted)."""

    status_code = 409


def active_entry(conn: Connection, member_id: int, at: datetime) -> dict[str, Any] | None:
    row = conn.execute(select(blacklist).where(blacklist.c.member_id == member_id,
                                               active_blacklist(at))
                       .order_by(blacklist.c.added_at.desc())).mappings().first()
    return dict(row) if row else None


def is_blacklisted(conn: Connection, member_id: int, at: datetime) -> bool:
    return active_entry(conn, member_id, at) is not None


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


def do_blacklist(conn: Connection, *, actor: Actor, member_id: int, reason: str,
                 expires_at: datetime | None = None) -> int:
    actor.require(Permission.OPERATE)
    reason = reason.strip()
    if not reason:
        raise InvalidInput("reason: say why the member is blacklisted")
    now = utcnow()
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("expires_at: must be in the future")
    if conn.execute(select(members.c.id).where(members.c.id == member_id)).first() is None:
        raise NotFound(f"member {member_id} not found")
    if is_blacklisted(conn, member_id, now):
        raise Conflict("member is already blacklisted")
    entry_id = int(conn.execute(blacklist.insert().values(
        member_id=member_id, reason=reason, added_by=actor.label, added_at=now,
        expires_at=expires_at).returning(blacklist.c.id)).scalar_one())
    audit.record(conn, actor=actor.label, action="member.blacklist", object_type="member",
                 object_id=member_id, detail={"reason": reason,
                                              "expires_at": expires_at.isoformat()
                                              if expires_at else None})
    return entry_id


def do_lift(conn: Connection, *, actor: Actor, member_id: int, reason: str = "") -> None:
    actor.require(Permission.OPERATE)
    now = utcnow()
    entry = active_entry(conn, member_id, now)
    if entry is None:
        raise NotFound("member is not blacklisted")
    conn.execute(update(blacklist).where(blacklist.c.id == entry["id"])
                 .values(lifted_at=now, lifted_by=actor.label))
    audit.record(conn, actor=actor.label, action="member.unblacklist", object_type="member",
                 object_id=member_id, detail={"entry": entry["id"], "reason": reason})


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
