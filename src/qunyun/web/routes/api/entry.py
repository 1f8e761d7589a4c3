"""Join requests over the API: the entry gate's pending queue (list, one request, approve,
decline, ask). How each group's gate decides is the ``entry`` automation section."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from qunyun.domain.staff import Permission
from qunyun.services import entry
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access

router = APIRouter(prefix="/api/v1", tags=["entry"])


class Decline(BaseModel):
    reason: str = Field("", max_length=500)
    tell: bool = True  # the group's decline text, with the reason, goes to the applicant


class Ask(BaseModel):
    text: str = Field(min_length=1, max_length=1000)


@router.get("/entry/requests")
@access(Permission.VIEW)
def requests(actor: CurrentActor, conn: ReadConn, status: str = "open",
             group_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Requests newest first (``open``, ``closed``, ``all`` or one status) with the
    applicant's answers and history (blacklisted, groups, activities)."""
    return entry.list_requests(conn, actor=actor, status=status, group_id=group_id,
                               limit=limit)


@router.get("/entry/requests/{request_id}")
@access(Permission.VIEW)
def request(request_id: int, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    return entry.access_request_by_id(conn, actor=actor, request_id=request_id)


@router.post("/entry/requests/{request_id}/approve")
@access(Permission.OPERATE)
def approve(request_id: int, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    """Let the applicant in (a 409 when the request was already decided)."""
    with runtime.uow.write() as conn:
        return entry.do_decide(conn, actor=actor, request_id=request_id, approve=True,
                               capabilities=runtime.capabilities, now=runtime.now())


@router.post("/entry/requests/{request_id}/decline")
@access(Permission.OPERATE)
def decline(request_id: int, body: Decline, actor: CurrentActor,
            runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return entry.do_decide(conn, actor=actor, request_id=request_id, approve=False,
                               reason=body.reason, tell=body.tell,
                               capabilities=runtime.capabilities, now=runtime.now())


@router.post("/entry/requests/{request_id}/ask")
@access(Permission.OPERATE)
def ask(request_id: int, body: Ask, actor: CurrentActor, runtime: RuntimeDep
        ) -> dict[str, Any]:
    """Ask the applicant privately; their reply is added to the request's answers."""
    with runtime.uow.write() as conn:
        return entry.do_ask(conn, actor=actor, request_id=request_id, text=body.text,
                            capabilities=runtime.capabilities, now=runtime.now())
