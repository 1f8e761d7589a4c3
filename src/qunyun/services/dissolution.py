"""Dissolving a group (F10; seed 002's SOP): four steps with gaps between them — a notice
telling members where to go next, the avatar greyed, the group renamed
(``社群已解散-后续服务请私信``), the group dismissed — each a scheduled job, so a worker
restarted between steps picks up where it was (the scheduler fires each job once). Each
step is done by the platform where it can (the notice, the rename) and becomes a staff task
where it cannot (no platform lets a bot change the avatar or dismiss a group: WeCom none of
the four). The group turns dissolving when the SOP starts and closed at its last step, its
history kept for analytics; moved back to active, the remaining steps do nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import groups
from qunyun.domain.actions import Action, CapabilityLookup, HandToStaff, RenameGroup, SendText
from qunyun.domain.content import fill_slots
from qunyun.domain.events import ScheduleFired
from qunyun.domain.groups import GroupState
from qunyun.i18n import Term
from qunyun.services import audit, lifecycle, outbox, schedules
from qunyun.services.errors import Conflict, InvalidInput
from qunyun.services.groups import access_group_by_id
from qunyun.services.ingest import IngestConfig
from qunyun.services.users import Actor

JOB_KIND = "dissolution_step"
RULE = "dissolution"
STEPS = ("notice", "avatar", "rename", "dismiss")
RENAMED = "社群已解散-后续服务请私信"
DEFAULT_NOTICE = ("各位好，「{group}」将在近期解散，感谢大家一直以来的陪伴！"
                  "后续服务请私信群主，新的活动会在新群通知大家。")
MIN_GAP, MAX_GAP = timedelta(minutes=1), timedelta(days=30)


def _action(kind: str, group_id: int, group_name: str, text: str, new_name: str) -> Action:
    """The step as the platform would do it (a staff task where it cannot)."""
    if kind == "notice":
        return SendText(group_id=group_id, text=text)
    if kind == "rename":
        return RenameGroup(group_id=group_id, new_name=new_name)
    title = (f"把「{group_name}」的群头像换成灰色" if kind == "avatar"
             else f"解散群聊「{group_name}」")
    return HandToStaff(group_id=group_id, title=title, reason="解散流程")


def plan(group: dict[str, Any], *, can: frozenset[Any], start: datetime, gap: timedelta,
         notice: str, new_name: str) -> list[dict[str, Any]]:
    """The four steps in order: ``kind``, ``at``, ``by`` (platform or staff) and what it
    says or becomes."""
    name = group["name"] or group["external_id"]
    steps = []
    for i, kind in enumerate(STEPS):
        action = _action(kind, int(group["id"]), name, fill_slots(notice, {"group": name}),
                         new_name)
        by_platform = not action.needs_person and action.required_capabilities() <= can
        steps.append({"kind": kind, "at": start + gap * i,
                      "by": "platform" if by_platform else "staff",
                      "text": getattr(action, "text", "") or getattr(action, "title", ""),
                      "new_name": new_name if kind == "rename" else ""})
    return steps


def do_dissolve(conn: Connection, *, actor: Actor, group_id: int, gap: timedelta,
                notice: str | None, new_name: str | None, dry_run: bool,
                capabilities: CapabilityLookup, now: datetime) -> dict[str, Any]:
    """Start the SOP (``dry_run``: only show the steps). The group must be allowed to turn
    dissolving from where it is; a group already dissolving or closed is a 409."""
    group = access_group_by_id(conn, actor=actor, group_id=group_id, write=True)
    if group["state"] in (GroupState.DISSOLVING.value, GroupState.CLOSED.value):
        raise Conflict("group {group_id} is already {state}", group_id=group_id,
                       state=Term("gstate", group["state"]))
    if not MIN_GAP <= gap <= MAX_GAP:
        raise InvalidInput("gap: between 1 minute and 30 days")
    text = (DEFAULT_NOTICE if notice is None else notice).strip()
    name = (RENAMED if new_name is None else new_name).strip()
    if not text or len(text) > 1000:
        raise InvalidInput("notice: 1 to 1000 characters")
    if not name or len(name) > 64:
        raise InvalidInput("new name: 1 to 64 characters")
    steps = plan(group, can=capabilities(group["platform"]), start=now, gap=gap,
                 notice=text, new_name=name)
    if not dry_run:
        lifecycle.do_set_state(conn, actor=actor, group_id=group_id, state="dissolving",
                               reason="解散流程", now=now)
        stamp = now.strftime("%Y%m%d%H%M%S")
        for step in steps:
            schedules.do_schedule_job(
                conn, key=f"dissolve:{group_id}:{stamp}:{step['kind']}", kind=JOB_KIND,
                run_at=step["at"], actor=actor.label, group_id=group_id,
                payload={"group_id": group_id, "step": step["kind"], "text": step["text"],
                         "new_name": step["new_name"]})
        audit.record(conn, actor=actor.label, action="group.dissolve", object_type="group",
                     object_id=group_id, detail={"gap_minutes": gap.total_seconds() / 60,
                                                 "new_name": name})
    return {"group_id": group_id, "dry_run": dry_run, "steps": steps}


def fire_step(conn: Connection, event: ScheduleFired, config: IngestConfig,
              now: datetime) -> list[int]:
    """The job handler: one step, once; nothing when the group is no longer dissolving
    (the dissolution was called off)."""
    group_id, kind = int(event.payload.get("group_id", 0)), str(event.payload.get("step"))
    group = conn.execute(select(groups).where(groups.c.id == group_id)).mappings().first()
    if group is None or group["state"] != GroupState.DISSOLVING.value or kind not in STEPS:
        return []
    name = group["name"] or group["external_id"]
    action = _action(kind, group_id, name, str(event.payload.get("text") or ""),
                     str(event.payload.get("new_name") or RENAMED))
    ids = outbox.enqueue(conn, platform=group["platform"], actions=[(RULE, action)],
                         capabilities=config.capabilities(group["platform"]),
                         key_prefix=f"{event.job_key}", now=now)
    if kind == "dismiss":
        lifecycle.close_dissolved(conn, group=dict(group), now=now)
    return ids
