"""The JSON API under /api/v1 for playbooks: steps, groups, pause, shift, skip and the dry run.
Calls services only; roles are checked there."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from qunyun.domain.staff import Permission
from qunyun.services import playbooks
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access
from qunyun.web.outputs import PlaybookOut, PlaybookSummaryOut
from qunyun.web.schemas import patch_values

router = APIRouter(prefix="/api/v1", tags=["playbooks"])


class PlaybookCreate(BaseModel):
    name: str
    description: str = ""
    campaign_start: datetime | None = None
    variables: dict[str, str] = Field(default_factory=dict)
    group_ids: list[int] = Field(default_factory=list, max_length=5000)
    on_state: str = Field("", max_length=16)  # runs in each group entering this state


class PlaybookEdit(BaseModel):
    name: str | None = None
    description: str | None = None
    variables: dict[str, str] | None = None
    status: Literal["active", "paused"] | None = None
    campaign_start: datetime | None = None
    on_state: str | None = Field(None, max_length=16)


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


@router.get("/playbooks", response_model=list[PlaybookSummaryOut])
@access(Permission.VIEW)
def playbooks_list(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return playbooks.list_playbooks(conn, actor=actor)


@router.post("/playbooks", response_model=PlaybookOut, status_code=201)
@access(Permission.OPERATE)
def playbooks_create(body: PlaybookCreate, actor: CurrentActor,
                     runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return playbooks.do_create_playbook(conn, actor=actor, **body.model_dump())


@router.get("/playbooks/{playbook_id}", response_model=PlaybookOut)
@access(Permission.VIEW)
def playbooks_get(playbook_id: int, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    return playbooks.get_playbook(conn, actor=actor, playbook_id=playbook_id)


@router.patch("/playbooks/{playbook_id}", response_model=PlaybookOut)
@access(Permission.OPERATE)
def playbooks_edit(playbook_id: int, body: PlaybookEdit, actor: CurrentActor,
                   runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return playbooks.do_update_playbook(conn, actor=actor, playbook_id=playbook_id,
                                            changes=patch_values(
                                                body, nullable=("campaign_start",)),
                                            tz=runtime.settings.tz)


@router.post("/playbooks/{playbook_id}/shift", response_model=PlaybookOut)
@access(Permission.VIEW)
def playbooks_shift(playbook_id: int, body: Shift, actor: CurrentActor,
                    runtime: RuntimeDep) -> dict[str, Any]:
    by = timedelta(minutes=body.minutes) if body.minutes is not None else None
    with runtime.uow.write() as conn:
        return playbooks.do_shift_campaign(conn, actor=actor, playbook_id=playbook_id, by=by,
                                           to=body.to, tz=runtime.settings.tz)


@router.post("/playbooks/{playbook_id}/groups", response_model=PlaybookOut)
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
