"""Staff tasks: what a platform cannot do automatically becomes work for a person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from qunyun.adapters.storage.tables import groups, members, staff_tasks
from qunyun.domain.staff import Permission
from qunyun.i18n import Term
from qunyun.services import audit
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.listing import Columns, Listing, Page, fetch
from qunyun.services.users import Actor

OPEN = "open"
DONE = "done"
DISMISSED = "dismissed"


def create_task(
    conn: Connection, *, kind: str, title: str, reason: str, platform: str = "",
    group_id: int | None = None, member_id: int | None = None,
    payload: dict[str, Any] | None = None, now: datetime, due_at: datetime | None = None,
    actor: str = "system",
) -> int:
    task_id = conn.execute(staff_tasks.insert().values(
        kind=kind, title=title, reason=reason, platform=platform, group_id=group_id,
        member_id=member_id, payload=payload or {}, status=OPEN, due_at=due_at, created_at=now,
        outcome="",
    ).returning(staff_tasks.c.id)).scalar_one()
    audit.record(conn, actor=actor, action="task.create", object_type="staff_task",
                 object_id=task_id, detail={"kind": kind, "reason": reason})
    return int(task_id)


def dismiss(conn: Connection, *, task_id: int, outcome: str, actor: str,
            now: datetime) -> bool:
    """Close an open task nobody needs to do any more (the decision behind it was
    overturned); False when it was no longer open."""
    changed = conn.execute(update(staff_tasks).where(
        staff_tasks.c.id == task_id, staff_tasks.c.status == OPEN).values(
        status=DISMISSED, done_at=now, outcome=outcome)).rowcount
    if changed:
        audit.record(conn, actor=actor, action="task.dismissed", object_type="staff_task",
                     object_id=task_id, detail={"outcome": outcome})
    return bool(changed)


def title_words(task: dict[str, Any]) -> Any:
    """The task's title as stored words when it was made with them (shown in the reader's
    language), else its text."""
    return ((task.get("payload") or {}).get("says") or {}).get("title") or task["title"]


def reason_words(task: dict[str, Any]) -> Any:
    return ((task.get("payload") or {}).get("says") or {}).get("reason") or task["reason"]


TASK_COLUMNS = Columns(
    sortable={"id": (staff_tasks.c.id, "desc"), "due": (staff_tasks.c.due_at, "asc"),
              "kind": (staff_tasks.c.kind, "asc"), "group": (groups.c.name, "asc"),
              "status": (staff_tasks.c.status, "asc")},
    searched=(staff_tasks.c.title, staff_tasks.c.reason, groups.c.name,
              members.c.display_name), number=members.c.number, tiebreak=staff_tasks.c.id.desc())


def page_tasks(conn: Connection, *, actor: Actor, status: str | None = OPEN,
               listing: Listing = Listing(), except_kinds: tuple[str, ...] = ()) -> Page:
    """Tasks of one status (or all), searched by title, reason, group or member."""
    actor.require(Permission.VIEW)
    stmt = (select(staff_tasks, groups.c.name.label("group_name"),
                   members.c.display_name.label("member_name"),
                   members.c.number.label("member_number"))
            .outerjoin(groups, groups.c.id == staff_tasks.c.group_id)
            .outerjoin(members, members.c.id == staff_tasks.c.member_id))
    if status:
        stmt = stmt.where(staff_tasks.c.status == status)
    if except_kinds:
        stmt = stmt.where(staff_tasks.c.kind.not_in(except_kinds))
    return fetch(conn, stmt, listing, TASK_COLUMNS)


def list_tasks(conn: Connection, *, actor: Actor, status: str | None = OPEN,
               limit: int = 100, except_kinds: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The newest ``limit`` tasks."""
    return page_tasks(conn, actor=actor, status=status, listing=Listing(per_page=limit),
                      except_kinds=except_kinds).rows


def count_open_tasks(conn: Connection, *, kinds: tuple[str, ...] | None = None,
                     except_kinds: tuple[str, ...] = ()) -> int:
    """Open tasks, of ``kinds`` only or all but ``except_kinds``."""
    stmt = select(func.count()).select_from(staff_tasks).where(staff_tasks.c.status == OPEN)
    if kinds is not None:
        stmt = stmt.where(staff_tasks.c.kind.in_(kinds))
    if except_kinds:
        stmt = stmt.where(staff_tasks.c.kind.not_in(except_kinds))
    return int(conn.execute(stmt).scalar_one())


def access_task_by_id(conn: Connection, *, actor: Actor, task_id: int) -> dict[str, Any]:
    actor.require(Permission.VIEW)
    row = conn.execute(select(staff_tasks).where(staff_tasks.c.id == task_id)).mappings().first()
    if row is None:
        raise NotFound("task {task_id} not found", task_id=task_id)
    return dict(row)


def do_complete_task(conn: Connection, *, actor: Actor, task_id: int, outcome: str = "",
                     dismiss: bool = False, now: datetime) -> dict[str, Any]:
    """Mark a task done (or dismissed) with what the person did; only open tasks change."""
    actor.require(Permission.WORK_TASKS)
    task = access_task_by_id(conn, actor=actor, task_id=task_id)
    if task["status"] != OPEN:
        raise Conflict("task {task_id} is already {status}", task_id=task_id,
                       status=Term("status", task["status"]))
    if len(outcome) > 2000:
        raise InvalidInput("outcome: at most 2000 characters")
    status = DISMISSED if dismiss else DONE
    conn.execute(update(staff_tasks).where(staff_tasks.c.id == task_id).values(
        status=status, done_at=now, done_by=actor.id or None, outcome=outcome))
    # the outbox rows waiting on this task settle with it: done by a person, or not at all
    from qunyun.services import outbox as outbox_service  # it creates tasks: import late

    outbox_service.settle_for_task(conn, task_id=task_id, done=not dismiss,
                                   receipt={"by_person": actor.label, "outcome": outcome},
                                   now=now)
    audit.record(conn, actor=actor.label, action=f"task.{status}", object_type="staff_task",
                 object_id=task_id, detail={"outcome": outcome})
    return access_task_by_id(conn, actor=actor, task_id=task_id)


def repoint_group(conn: Connection, *, old: int, new: int) -> None:
    """A planned group linked to a chat the bot saw first: its tasks are the chat's."""
    conn.execute(update(staff_tasks).where(staff_tasks.c.group_id == old)
                 .values(group_id=new))

