"""Service records (F3): notes, calls and follow-ups staff write on a member's timeline."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import Connection, func, select, update

from qunyun.adapters.storage.tables import members, service_records
from qunyun.clock import utcnow
from qunyun.domain.staff import Permission
from qunyun.services import audit
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.users import Actor

KINDS = ("note", "call", "follow_up")
MAX_BODY = 4000


def parse_due(text: str, tz: tzinfo) -> datetime | None:
    """A due time as staff type it (``2026-12-01T10:00``, in the team's zone unless it names
    an offset); None for an empty field."""
    if not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput("due: a time like 2026-12-01T10:00, not {text!r}", text=text) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def do_add_record(conn: Connection, *, actor: Actor, member_id: int, kind: str, body: str,
                  due_at: datetime | None = None) -> int:
    """Write a record; a follow-up needs a due time and stays open until completed."""
    actor.require(Permission.WORK_TASKS)
    body = body.strip()
    if kind not in KINDS:
        raise InvalidInput("kind: one of {kinds}", kinds=', '.join(KINDS))
    if not body or len(body) > MAX_BODY:
        raise InvalidInput("body: 1–{limit} characters", limit=MAX_BODY)
    if kind == "follow_up" and due_at is None:
        raise InvalidInput("due_at: a follow-up needs a due time")
    if kind != "follow_up" and due_at is not None:
        raise InvalidInput("due_at: only follow-ups have a due time")
    if conn.execute(select(members.c.id).where(members.c.id == member_id)).first() is None:
        raise NotFound("member {member_id} not found", member_id=member_id)
    record_id = int(conn.execute(service_records.insert().values(
        member_id=member_id, kind=kind, body=body, author_id=actor.id or None,
        author=actor.label, created_at=utcnow(), due_at=due_at,
    ).returning(service_records.c.id)).scalar_one())
    audit.record(conn, actor=actor.label, action="record.add", object_type="member",
                 object_id=member_id, detail={"record": record_id, "kind": kind})
    return record_id


def do_complete_follow_up(conn: Connection, *, actor: Actor, record_id: int) -> None:
    actor.require(Permission.WORK_TASKS)
    row = conn.execute(select(service_records).where(service_records.c.id == record_id)).first()
    if row is None:
        raise NotFound("record {record_id} not found", record_id=record_id)
    if row.kind != "follow_up":
        raise InvalidInput("only follow-ups are completed")
    if row.done_at is not None:
        raise Conflict("follow-up already completed")
    conn.execute(update(service_records).where(service_records.c.id == record_id)
                 .values(done_at=utcnow(), done_by=actor.label))
    audit.record(conn, actor=actor.label, action="record.complete", object_type="member",
                 object_id=row.member_id, detail={"record": record_id})


def member_records(conn: Connection, member_id: int, limit: int = 200) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(
        select(service_records).where(service_records.c.member_id == member_id)
        .order_by(service_records.c.created_at.desc()).limit(limit)).mappings()]


def count_follow_ups(conn: Connection, *, due_before: datetime) -> int:
    """Open follow-ups due by ``due_before``."""
    return int(conn.execute(select(func.count()).select_from(service_records).where(
        service_records.c.kind == "follow_up", service_records.c.done_at.is_(None),
        service_records.c.due_at <= due_before)).scalar_one())


def list_follow_ups(conn: Connection, *, actor: Actor, due_before: datetime | None = None,
                    limit: int = 200) -> list[dict[str, Any]]:
    """Open follow-ups, soonest first (the sales to-do list)."""
    actor.require(Permission.VIEW)
    stmt = (select(service_records, members.c.number, members.c.display_name)
            .join(members, members.c.id == service_records.c.member_id)
            .where(service_records.c.kind == "follow_up", service_records.c.done_at.is_(None))
            .order_by(service_records.c.due_at).limit(limit))
    if due_before is not None:
        stmt = stmt.where(service_records.c.due_at <= due_before)
    return [dict(r) for r in conn.execute(stmt).mappings()]
