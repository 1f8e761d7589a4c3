"""The JSON API under /api/v1 for scripts: the library, versions, archive and preview. Calls
services only; roles are checked there."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from qunyun.domain.staff import Permission
from qunyun.services import scripts
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access
from qunyun.web.outputs import ScriptOut

router = APIRouter(prefix="/api/v1", tags=["scripts"])


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


@router.get("/scripts", response_model=list[ScriptOut])
@access(Permission.VIEW)
def scripts_list(actor: CurrentActor, conn: ReadConn, kind: str | None = None,
                 archived: bool = False) -> list[dict[str, Any]]:
    return scripts.list_scripts(conn, actor=actor, kind=kind, archived=archived)


@router.post("/scripts", response_model=ScriptOut, status_code=201)
@access(Permission.OPERATE)
def scripts_create(body: ScriptSave, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return scripts.do_create_script(conn, actor=actor, values=body.model_dump())


@router.get("/scripts/{script_id}", response_model=ScriptOut)
@access(Permission.VIEW)
def scripts_get(script_id: int, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    out = scripts.get_script(conn, actor=actor, script_id=script_id)
    out["history"] = scripts.script_history(conn, actor=actor, script_id=script_id)
    return out


@router.patch("/scripts/{script_id}", response_model=ScriptOut)
@access(Permission.OPERATE)
def scripts_edit(script_id: int, body: ScriptEdit, actor: CurrentActor,
                 runtime: RuntimeDep) -> dict[str, Any]:
    values = body.model_dump(exclude_none=True, exclude={"note"})
    with runtime.uow.write() as conn:
        return scripts.do_update_script(conn, actor=actor, script_id=script_id, values=values,
                                        note=body.note)


@router.post("/scripts/{script_id}/archive", response_model=ScriptOut)
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
