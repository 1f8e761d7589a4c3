"""Pushes a person must confirm, handed to the platform and followed to their results.

A broadcast or playbook step on a platform without unconfirmed broadcasting becomes one
confirmation task per occurrence (services/pushes.py). Where the platform can take the send
itself and ask the owner to confirm it (capability ``broadcast_needs_confirmation``: WeCom's
add_msg_template), the worker submits it here, keeps the platform's tickets on the task, and
polls them: each group's outbox row becomes ``delivered`` when the owner sent it, or ``dead``
with the platform's reason; the task closes when nothing is left waiting. Where it cannot, the
task stays for a person, as before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from qunyun.adapters.platforms.base import (
    CONFIRM_FAILED,
    CONFIRM_SENT,
    PlatformAdapter,
)
from qunyun.adapters.storage.tables import groups, outbox, staff_tasks
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.domain.actions import Capability
from qunyun.domain.outbox import OutboxStatus
from qunyun.domain.staff import Permission
from qunyun.services import audit, tasks
from qunyun.services import outbox as outbox_service
from qunyun.services.errors import Conflict, InvalidInput
from qunyun.services.pushes import CONFIRM_TASK
from qunyun.services.users import Actor

WAITING = OutboxStatus.STAFF_TASK  # a row whose send is waiting for a person


@dataclass
class ConfirmStats:
    submitted: int = 0
    sent: int = 0
    failed: int = 0
    closed: int = 0


def _handled_by(adapters: Mapping[str, PlatformAdapter], platform: str
                ) -> PlatformAdapter | None:
    adapter = adapters.get(platform)
    return adapter if adapter and adapter.can(Capability.BROADCAST_NEEDS_CONFIRMATION) else None


def _waiting_rows(conn: Connection, task_id: int) -> list[Any]:
    return list(conn.execute(
        select(outbox.c.id, outbox.c.payload, groups.c.external_id)
        .join(groups, groups.c.id == outbox.c.group_id)
        .where(outbox.c.staff_task_id == task_id, outbox.c.status == WAITING)))


def submit_due(uow: UnitOfWork, *, adapters: Mapping[str, PlatformAdapter],
               now: datetime) -> ConfirmStats:
    """Hand every due, not yet submitted confirmation task to its platform."""
    stats = ConfirmStats()
    with uow.read() as conn:
        due = [dict(r) for r in conn.execute(select(staff_tasks).where(
            staff_tasks.c.kind == CONFIRM_TASK, staff_tasks.c.status == tasks.OPEN,
            (staff_tasks.c.due_at.is_(None)) | (staff_tasks.c.due_at <= now))).mappings()]
    for task in due:
        adapter = _handled_by(adapters, task["platform"])
        if adapter is None or dict(task["payload"] or {}).get("tickets") is not None:
            continue
        with uow.read() as conn:
            rows = _waiting_rows(conn, task["id"])
        # one submission per distinct text (variables can differ per group)
        by_body: dict[str, list[Any]] = {}
        for r in rows:
            key = json.dumps([r.payload.get("text", ""), r.payload.get("attachments", [])],
                             ensure_ascii=False, sort_keys=True)
            by_body.setdefault(key, []).append(r)
        recorded: list[dict[str, Any]] = []
        refused: dict[str, str] = {}
        for key, part in by_body.items():
            text, attachments = json.loads(key)
            for ticket in adapter.submit_confirmation([r.external_id for r in part], text,
                                                      attachments):
                refused.update(ticket.failed)
                if ticket.ticket:
                    recorded.append({"ticket": ticket.ticket, "chats": list(ticket.chats)})
        with uow.write() as conn:
            for r in rows:
                if r.external_id in refused:
                    _settle(conn, r.id, CONFIRM_FAILED, refused[r.external_id], "", now)
                    stats.failed += 1
            payload = {**dict(task["payload"] or {}), "tickets": recorded,
                       "submitted_at": now.isoformat()}
            conn.execute(update(staff_tasks).where(staff_tasks.c.id == task["id"])
                         .values(payload=payload))
            audit.record(conn, actor="system", action="confirmation.submit",
                         object_type="staff_task", object_id=task["id"],
                         detail={"tickets": len(recorded), "refused": len(refused)})
            stats.submitted += len(recorded)
            stats.closed += _close_if_settled(conn, task["id"], now)
    return stats


def _settle(conn: Connection, outbox_id: int, state: str, reason: str, ticket: str,
            now: datetime) -> None:
    outbox_service.settle_confirmed(conn, outbox_id=outbox_id, sent=state == CONFIRM_SENT,
                                    reason=reason, ticket=ticket, now=now)


def _close_if_settled(conn: Connection, task_id: int, now: datetime) -> int:
    statuses = list(conn.execute(select(outbox.c.status).where(
        outbox.c.staff_task_id == task_id)).scalars())
    if WAITING in statuses:
        return 0
    sent = statuses.count(OutboxStatus.DELIVERED)
    outcome = (f"群主已确认发送 {sent} 个群，{len(statuses) - sent} 个未送达 "
               f"(sent to {sent} groups, {len(statuses) - sent} not delivered)")
    conn.execute(update(staff_tasks).where(staff_tasks.c.id == task_id,
                                           staff_tasks.c.status == tasks.OPEN)
                 .values(status=tasks.DONE, done_at=now, outcome=outcome))
    audit.record(conn, actor="system", action="task.done", object_type="staff_task",
                 object_id=task_id, detail={"outcome": outcome})
    return 1


def poll(uow: UnitOfWork, *, adapters: Mapping[str, PlatformAdapter],
         now: datetime) -> ConfirmStats:
    """Ask the platform how each submitted send went and settle the rows that are done."""
    stats = ConfirmStats()
    with uow.read() as conn:
        open_tasks = [dict(r) for r in conn.execute(select(staff_tasks).where(
            staff_tasks.c.kind == CONFIRM_TASK, staff_tasks.c.status == tasks.OPEN))
            .mappings()]
    for task in open_tasks:
        adapter = _handled_by(adapters, task["platform"])
        tickets = dict(task["payload"] or {}).get("tickets")
        if adapter is None or not tickets:
            continue
        results: dict[str, tuple[str, str, str]] = {}
        for t in tickets:
            for chat, (state, reason) in adapter.poll_confirmation(t["ticket"]).items():
                results[chat] = (state, reason, t["ticket"])
        with uow.write() as conn:
            for r in _waiting_rows(conn, task["id"]):
                state, reason, ticket = results.get(r.external_id, ("pending", "", ""))
                if state in (CONFIRM_SENT, CONFIRM_FAILED):
                    _settle(conn, r.id, state, reason, ticket, now)
                    stats.sent += state == CONFIRM_SENT
                    stats.failed += state == CONFIRM_FAILED
            stats.closed += _close_if_settled(conn, task["id"], now)
    return stats


def _submitted_task(conn: Connection, actor: Actor, task_id: int) -> dict[str, Any]:
    task = tasks.access_task_by_id(conn, actor=actor, task_id=task_id)
    if task["kind"] != CONFIRM_TASK or task["status"] != tasks.OPEN:
        raise Conflict("task {task_id} is not an open group-send confirmation", task_id=task_id)
    if not dict(task["payload"] or {}).get("tickets"):
        raise InvalidInput("task {task_id} has not been handed to the platform", task_id=task_id)
    return task


def do_remind(uow: UnitOfWork, *, actor: Actor, adapters: Mapping[str, PlatformAdapter],
              task_id: int) -> int:
    """Ask the platform to remind the owners (WeCom: at most 3 times a day)."""
    actor.require(Permission.WORK_TASKS)
    with uow.read() as conn:
        task = _submitted_task(conn, actor, task_id)
    adapter = _handled_by(adapters, task["platform"])
    if adapter is None:
        raise InvalidInput("platform {platform!r} cannot remind", platform=task['platform'])
    tickets = task["payload"]["tickets"]
    for t in tickets:
        adapter.remind_confirmation(t["ticket"])
    with uow.write() as conn:
        audit.record(conn, actor=actor.label, action="confirmation.remind",
                     object_type="staff_task", object_id=task_id,
                     detail={"tickets": len(tickets)})
    return len(tickets)


def do_cancel(uow: UnitOfWork, *, actor: Actor, adapters: Mapping[str, PlatformAdapter],
              task_id: int, now: datetime) -> None:
    """Withdraw the send on the platform; rows still waiting are cancelled with the task."""
    actor.require(Permission.OPERATE)
    with uow.read() as conn:
        task = _submitted_task(conn, actor, task_id)
    adapter = _handled_by(adapters, task["platform"])
    if adapter is None:
        raise InvalidInput("platform {platform!r} cannot cancel a send", platform=task['platform'])
    for t in task["payload"]["tickets"]:
        adapter.cancel_confirmation(t["ticket"])
    with uow.write() as conn:
        tasks.do_complete_task(conn, actor=actor, task_id=task_id, dismiss=True,
                               outcome="已撤回群发 (send withdrawn)", now=now)
