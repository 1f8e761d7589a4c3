"""The JSON API under /api/v1 for saved segments, counts and their members. Calls services
only; roles are checked there."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from qunyun.domain.staff import Permission
from qunyun.services import (
    segments,
)
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access
from qunyun.web.outputs import SegmentMemberOut, SegmentOut

router = APIRouter(prefix="/api/v1", tags=["segments"])


class SegmentCreate(BaseModel):
    name: str
    expression: str
    description: str = ""


class SegmentUpdate(BaseModel):
    name: str | None = None
    expression: str | None = None
    description: str | None = None


class Expression(BaseModel):
    expression: str


# --- segments -------------------------------------------------------------------------------

@router.get("/segments", response_model=list[SegmentOut])
@access(Permission.VIEW)
def api_segments(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return segments.list_segments(conn, actor=actor)


@router.post("/segments", response_model=SegmentOut, status_code=201)
@access(Permission.OPERATE)
def api_segment_create(body: SegmentCreate, actor: CurrentActor,
                       runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        segment_id = segments.do_create_segment(conn, actor=actor, name=body.name,
                                                expression=body.expression,
                                                description=body.description)
        return segments.get_segment(conn, actor=actor, segment_id=segment_id)


@router.get("/segments/{segment_id}", response_model=SegmentOut)
@access(Permission.VIEW)
def api_segment(segment_id: int, actor: CurrentActor, runtime: RuntimeDep,
                conn: ReadConn) -> dict[str, Any]:
    seg = segments.get_segment(conn, actor=actor, segment_id=segment_id)
    seg["members"] = segments.count_expression(conn, actor=actor, expression=seg["expression"],
                                               clock=runtime.clock())
    return seg


@router.patch("/segments/{segment_id}", status_code=204)
@access(Permission.OPERATE)
def api_segment_update(segment_id: int, body: SegmentUpdate, actor: CurrentActor,
                       runtime: RuntimeDep) -> None:
    with runtime.uow.write() as conn:
        segments.do_update_segment(conn, actor=actor, segment_id=segment_id,
                                   **body.model_dump())


@router.delete("/segments/{segment_id}", status_code=204)
@access(Permission.OPERATE)
def api_segment_delete(segment_id: int, actor: CurrentActor, runtime: RuntimeDep) -> None:
    with runtime.uow.write() as conn:
        segments.do_delete_segment(conn, actor=actor, segment_id=segment_id)


@router.post("/segments/count")
@access(Permission.VIEW)
def api_segment_count(body: Expression, actor: CurrentActor, runtime: RuntimeDep,
                      conn: ReadConn) -> dict[str, Any]:
    """Count an unsaved expression (the builder's live count)."""
    return {"expression": body.expression,
            "members": segments.count_expression(conn, actor=actor,
                                                 expression=body.expression,
                                                 clock=runtime.clock())}


@router.get("/segments/{segment_id}/members", response_model=list[SegmentMemberOut])
@access(Permission.VIEW)
def api_segment_members(segment_id: int, actor: CurrentActor, runtime: RuntimeDep,
                        conn: ReadConn, limit: int = 100,
                        offset: int = 0) -> list[dict[str, Any]]:
    seg = segments.get_segment(conn, actor=actor, segment_id=segment_id)
    return segments.list_expression_members(conn, actor=actor, expression=seg["expression"],
                                            clock=runtime.clock(),
                                            limit=min(max(limit, 1), 1000),
                                            offset=max(offset, 0))
