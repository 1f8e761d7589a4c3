"""The JSON API under /api/v1 for tags and rule tags. Calls services only; roles are checked
there."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from qunyun.domain.staff import Permission
from qunyun.services import (
    tags,
)
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access
from qunyun.web.outputs import CreatedOut, TagOut

router = APIRouter(prefix="/api/v1", tags=["tags"])


class TagCreate(BaseModel):
    name: str
    group: str = ""
    color: str = ""
    kind: str = "manual"
    rule: str = ""
    description: str = ""


class TagUpdate(BaseModel):
    name: str | None = None
    group: str | None = None
    color: str | None = None
    rule: str | None = None
    description: str | None = None


# --- tags ---------------------------------------------------------------------------------

@router.get("/tags", response_model=list[TagOut])
@access(Permission.VIEW)
def api_tags(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return tags.list_tags(conn, actor=actor)


@router.post("/tags", response_model=CreatedOut, status_code=201)
@access(Permission.OPERATE)
def api_tag_create(body: TagCreate, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        tag_id = tags.do_create_tag(conn, actor=actor, name=body.name, group=body.group,
                                    color=body.color, kind=body.kind, rule=body.rule,
                                    description=body.description, clock=runtime.clock())
    return {"id": tag_id}


@router.patch("/tags/{tag_id}", status_code=204)
@access(Permission.OPERATE)
def api_tag_update(tag_id: int, body: TagUpdate, actor: CurrentActor,
                   runtime: RuntimeDep) -> None:
    with runtime.uow.write() as conn:
        tags.do_update_tag(conn, actor=actor, tag_id=tag_id, **body.model_dump(),
                           clock=runtime.clock())


@router.post("/tags/recompute")
@access(Permission.OPERATE)
def api_tags_recompute(actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return tags.do_recompute_rule_tags(conn, actor=actor, clock=runtime.clock())
