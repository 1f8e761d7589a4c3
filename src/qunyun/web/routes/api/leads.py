"""The JSON API under /api/v1 for lead scores, lead-list exports and saved lead lists. Calls
services only; roles are checked there."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from qunyun.domain.staff import Permission
from qunyun.services import (
    leads,
    segments,
)
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, attachment

router = APIRouter(prefix="/api/v1", tags=["leads"])


class LeadQuery(BaseModel):
    segment_id: int | None = None
    expression: str | None = None
    formula: str = leads.DEFAULT_FORMULA
    limit: int = Field(100, ge=1, le=5000)
    format: str = "csv"


class LeadListCreate(BaseModel):
    name: str
    segment: str
    formula: str


# --- leads ----------------------------------------------------------------------------------

@router.post("/leads/score")
@access(Permission.VIEW)
def api_leads_score(body: LeadQuery, actor: CurrentActor, runtime: RuntimeDep,
                    conn: ReadConn) -> dict[str, Any]:
    """Rank a segment by a formula; each row says why it scored."""
    expression, _ = segments.resolve_expression(conn, actor=actor, segment=body.segment_id,
                                                expression=body.expression)
    rows, total = leads.score(conn, actor=actor, expression=expression, formula=body.formula,
                              clock=runtime.clock(), limit=body.limit)
    return {"members": total, "rows": [r.as_dict() for r in rows]}


@router.post("/leads/export")
@access(Permission.VIEW)
def api_leads_export(body: LeadQuery, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    """The whole ranked list as CSV or XLSX (audited)."""
    with runtime.uow.write() as conn:
        expression, _ = segments.resolve_expression(conn, actor=actor, segment=body.segment_id,
                                                expression=body.expression)
        data, _ = leads.do_export_leads(conn, actor=actor, expression=expression,
                                        formula=body.formula, clock=runtime.clock(),
                                        fmt=body.format, source="api")
    return attachment(data, body.format)


@router.get("/lead-lists")
@access(Permission.VIEW)
def api_lead_lists(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return leads.list_lead_lists(conn, actor=actor)


@router.post("/lead-lists", status_code=201)
@access(Permission.OPERATE)
def api_lead_list_save(body: LeadListCreate, actor: CurrentActor,
                       runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return {"id": leads.do_save_lead_list(conn, actor=actor, name=body.name,
                                              segment=body.segment, formula=body.formula)}
