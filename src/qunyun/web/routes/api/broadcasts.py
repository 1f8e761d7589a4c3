"""The JSON API under /api/v1 for broadcasts (preview, create, cancel) and the delivery log.
Calls services only; roles are checked there."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from qunyun.domain.staff import Permission
from qunyun.services import broadcasts, pushes
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access
from qunyun.web.listing import ListingQuery, answer
from qunyun.web.outputs import BroadcastOut, DeliveryOut

router = APIRouter(prefix="/api/v1", tags=["broadcasts"])


class BroadcastSave(BaseModel):
    name: str = ""
    target: dict[str, Any]
    script_id: int | None = None
    text: str | None = None
    attachments: list[dict[str, Any]] = Field(default_factory=list, max_length=20)
    variables: dict[str, str] = Field(default_factory=dict)
    send_at: datetime | None = None
    pin: bool = False  # pinned in each group once sent, where the platform can pin


@router.get("/broadcasts", response_model=list[BroadcastOut])
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
        clock=runtime.clock(), pin=body.pin)


@router.post("/broadcasts", response_model=BroadcastOut, status_code=201)
@access(Permission.OPERATE)
def broadcasts_create(body: BroadcastSave, actor: CurrentActor,
                      runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return broadcasts.do_create_broadcast(conn, actor=actor, **body.model_dump())


@router.get("/broadcasts/{broadcast_id}", response_model=BroadcastOut)
@access(Permission.VIEW)
def broadcasts_get(broadcast_id: int, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    return broadcasts.get_broadcast(conn, actor=actor, broadcast_id=broadcast_id)


@router.post("/broadcasts/{broadcast_id}/cancel", response_model=BroadcastOut)
@access(Permission.OPERATE)
def broadcasts_cancel(broadcast_id: int, actor: CurrentActor,
                      runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return broadcasts.do_cancel_broadcast(conn, actor=actor, broadcast_id=broadcast_id)


@router.get("/deliveries", response_model=list[DeliveryOut])
@access(Permission.VIEW)
def deliveries_list(response: Response, actor: CurrentActor, conn: ReadConn,
                    listing: ListingQuery, playbook_id: int | None = None,
                    broadcast_id: int | None = None) -> list[dict[str, Any]]:
    """The send log, newest first (``sort``: due, recipients, dropped), searched by the
    text sent, paged with the total in ``X-Total-Count``."""
    return answer(response, pushes.page_deliveries(conn, actor=actor, playbook_id=playbook_id,
                                                   broadcast_id=broadcast_id,
                                                   listing=listing))
