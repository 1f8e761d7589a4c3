"""Content JSON API under /api/v1: scripts (versions, preview), playbooks (steps, groups,
pause, shift, skip, dry run), broadcasts (preview, create, cancel) and the delivery log."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from qunyun.domain.staff import Permission
from qunyun.services import broadcasts, playbooks, pushes, scripts, timeline
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access
from qunyun.web.schemas import patch_values

router = APIRouter(prefix="/api/v1", tags=["content"])


class ScriptSave(BaseModel):
    name: str
    kind: str = "announcement"
    body: str = ""
    variables: list[str] = Field(default_factory=list)
    attachments: list[dict[str, Any]] = Field(default_factory=list, max_length=20)


class ScriptEdit(BaseModel):
    name: str | None = None
    kind: str | None = None
    body: str | None = None
    variables: list[str] | None = None
    attachments: list[dict[str, Any]] | None = Field(None, max_length=20)
    note: str = ""


class PlaybookCreate(BaseModel):
    name: str
    description: str = ""
    campaign_start: datetime | None = None
    variables: dict[str, str] = Field(default_factory=dict)
    group_ids: list[int] = Field(default_factory=list, max_length=5000)


class PlaybookEdit(BaseModel):
    name: str | None = None
    description: str | None = None
    variables: dict[str, str] | None = None
    status: Literal["active", "paused"] | None = None
    campaign_start: datetime | None = None


class Shift(BaseModel):
    minutes: int | None = None
    to: datetime | None = None


class StepSave(BaseModel):
    at: str | None = None
    script_id: int | None = None
    name: str | None = None
    target: dict[str, Any] | None = None
    max_messages_last_hour: int | None = None


STEP_NULLABLE = ("script_id", "max_messages_last_hour")


class Attach(BaseModel):
    group_ids: list[int] = Field(max_length=5000)
    detach: bool = False


class Skip(BaseModel):
    skipped: bool = True
    once: bool = False


class BroadcastSave(BaseModel):
    name: str = ""
    target: dict[str, Any]
    script_id: int | None = None
    text: str | None = None
    attachments: list[dict[str, Any]] = Field(default_factory=list, max_length=20)
    variables: dict[str, str] = Field(default_factory=dict)
    send_at: datetime | None = None


@router.get("/scripts")
@access(Permission.VIEW)
def scripts_list(actor: CurrentActor, conn: ReadConn, kind: str | None = None,
                 archived: bool = False) -> list[dict[str, Any]]:
    return scripts.list_scripts(conn, actor=actor, kind=kind, archived=archived)


@router.post("/scripts", status_code=201)
@access(Permission.OPERATE)
def scripts_create(body: ScriptSave, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return scripts.do_create_script(conn, actor=actor, values=body.model_dump())


@router.get("/scripts/{script_id}")
@access(Permission.VIEW)
def scripts_get(script_id: int, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    out = scripts.get_script(conn, actor=actor, script_id=script_id)
    out["history"] = scripts.script_history(conn, actor=actor, script_id=script_id)
    return out


@router.patch("/scripts/{script_id}")
@access(Permission.OPERATE)
def scripts_edit(script_id: int, body: ScriptEdit, actor: CurrentActor,
                 runtime: RuntimeDep) -> dict[str, Any]:
    values = body.model_dump(exclude_none=True, exclude={"note"})
    with runtime.uow.write() as conn:
        return scripts.do_update_script(conn, actor=actor, script_id=script_id, values=values,
                                        note=body.note)


@router.post("/scripts/{script_id}/archive")
@access(Permission.OPERATE)
def scripts_archive(script_id: int, actor: CurrentActor, runtime: RuntimeDep,
                    restore: bool = False) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return scripts.do_archive_script(conn, actor=actor, script_id=script_id,
                                         archived=not restore)


@router.get("/scripts/{script_id}/preview")
@access(Permission.VIEW)
def scripts_preview(script_id: int, actor: CurrentActor, conn: ReadConn, runtime: RuntimeDep,
                    group_id: int | None = None, member_id: int | None = None
                    ) -> dict[str, Any]:
    return scripts.preview_script(conn, actor=actor, script_id=script_id, group_id=group_id,
                                  member_id=member_id, tz=runtime.settings.tz)


@router.get("/playbooks")
@access(Permission.VIEW)
def playbooks_list(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return playbooks.list_playbooks(conn, actor=actor)


@router.post("/playbooks", status_code=201)
@access(Permission.OPERATE)
def playbooks_create(body: PlaybookCreate, actor: CurrentActor,
                     runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return playbooks.do_create_playbook(conn, actor=actor, **body.model_dump())


@router.get("/playbooks/{playbook_id}")
@access(Permission.VIEW)
def playbooks_get(playbook_id: int, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    return playbooks.get_playbook(conn, actor=actor, playbook_id=playbook_id)


@router.patch("/playbooks/{playbook_id}")
@access(Permission.OPERATE)
def playbooks_edit(playbook_id: int, body: PlaybookEdit, actor: CurrentActor,
                   runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return playbooks.do_update_playbook(conn, actor=actor, playbook_id=playbook_id,
                                            changes=patch_values(
                                                body, nullable=("campaign_start",)),
                                            tz=runtime.settings.tz)


@router.post("/playbooks/{playbook_id}/shift")
@access(Permission.VIEW)
def playbooks_shift(playbook_id: int, body: Shift, actor: CurrentActor,
                    runtime: RuntimeDep) -> dict[str, Any]:
    by = timedelta(minutes=body.minutes) if body.minutes is not None else None
    with runtime.uow.write() as conn:
        return playbooks.do_shift_campaign(conn, actor=actor, playbook_id=playbook_id, by=by,
                                           to=body.to, tz=runtime.settings.tz)


@router.post("/playbooks/{playbook_id}/groups")
@access(Permission.OPERATE)
def playbooks_attach(playbook_id: int, body: Attach, actor: CurrentActor,
                     runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return playbooks.do_attach_groups(conn, actor=actor, playbook_id=playbook_id,
                                          group_ids=body.group_ids, detach=body.detach)


@router.post("/playbooks/{playbook_id}/steps", status_code=201)
@access(Permission.OPERATE)
def steps_add(playbook_id: int, body: StepSave, actor: CurrentActor,
              runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return playbooks.do_add_step(conn, actor=actor, playbook_id=playbook_id,
                                     values=patch_values(body, nullable=STEP_NULLABLE),
                                     tz=runtime.settings.tz)


@router.patch("/playbooks/{playbook_id}/steps/{step_id}")
@access(Permission.OPERATE)
def steps_edit(playbook_id: int, step_id: int, body: StepSave, actor: CurrentActor,
               runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return playbooks.do_update_step(conn, actor=actor, playbook_id=playbook_id,
                                        step_id=step_id,
                                        values=patch_values(body, nullable=STEP_NULLABLE),
                                        tz=runtime.settings.tz)


@router.post("/playbooks/{playbook_id}/steps/{step_id}/skip")
@access(Permission.OPERATE)
def steps_skip(playbook_id: int, step_id: int, body: Skip, actor: CurrentActor,
               runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return playbooks.do_skip_step(conn, actor=actor, playbook_id=playbook_id,
                                      step_id=step_id, skipped=body.skipped, once=body.once,
                                      tz=runtime.settings.tz)


@router.delete("/playbooks/{playbook_id}/steps/{step_id}", status_code=204)
@access(Permission.OPERATE)
def steps_delete(playbook_id: int, step_id: int, actor: CurrentActor,
                 runtime: RuntimeDep) -> None:
    with runtime.uow.write() as conn:
        playbooks.do_delete_step(conn, actor=actor, playbook_id=playbook_id, step_id=step_id)


@router.get("/playbooks/{playbook_id}/preview")
@access(Permission.VIEW)
def playbooks_preview(playbook_id: int, actor: CurrentActor, conn: ReadConn,
                      runtime: RuntimeDep, start: date | None = None,
                      days: int = 7) -> dict[str, Any]:
    return playbooks.preview_playbook(conn, actor=actor, playbook_id=playbook_id,
                                      start=start, days=days, clock=runtime.clock())


@router.get("/timeline")
@access(Permission.VIEW)
def timeline_preview(actor: CurrentActor, conn: ReadConn, runtime: RuntimeDep,
                     group_id: int | None = None, member_id: int | None = None,
                     start: date | None = None, days: int = 7) -> dict[str, Any]:
    """A group's (or member's) whole push timeline: every playbook and broadcast, placed
    under the caps and quiet hours, campaign steps before routine ones."""
    return timeline.preview_timeline(conn, actor=actor, group_id=group_id, member_id=member_id,
                                     start=start, days=days, clock=runtime.clock())


@router.get("/broadcasts")
@access(Permission.VIEW)
def broadcasts_list(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return broadcasts.list_broadcasts(conn, actor=actor)


@router.post("/broadcasts/preview")
@access(Permission.VIEW)
def broadcasts_preview(body: BroadcastSave, actor: CurrentActor, conn: ReadConn,
                       runtime: RuntimeDep) -> dict[str, Any]:
    return broadcasts.preview_broadcast(
        conn, actor=actor, target=body.target, script_id=body.script_id, text=body.text,
        attachments=body.attachments, variables=body.variables, send_at=body.send_at,
        clock=runtime.clock())


@router.post("/broadcasts", status_code=201)
@access(Permission.OPERATE)
def broadcasts_create(body: BroadcastSave, actor: CurrentActor,
                      runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return broadcasts.do_create_broadcast(conn, actor=actor, **body.model_dump())


@router.get("/broadcasts/{broadcast_id}")
@access(Permission.VIEW)
def broadcasts_get(broadcast_id: int, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    return broadcasts.get_broadcast(conn, actor=actor, broadcast_id=broadcast_id)


@router.post("/broadcasts/{broadcast_id}/cancel")
@access(Permission.OPERATE)
def broadcasts_cancel(broadcast_id: int, actor: CurrentActor,
                      runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return broadcasts.do_cancel_broadcast(conn, actor=actor, broadcast_id=broadcast_id)


@router.get("/deliveries")
@access(Permission.VIEW)
def deliveries_list(actor: CurrentActor, conn: ReadConn, playbook_id: int | None = None,
                    broadcast_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    return pushes.list_deliveries(conn, actor=actor, limit=min(limit, 1000),
                                  playbook_id=playbook_id, broadcast_id=broadcast_id)
