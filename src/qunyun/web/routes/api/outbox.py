"""The delivery log over the API: rows by status, and retrying a failed one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from qunyun.domain.staff import Permission
from qunyun.services import outbox as outbox_service
from qunyun.services.errors import InvalidInput
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access
from qunyun.web.schemas import (
    OutboxPublic,
)

router = APIRouter(prefix="/api/v1", tags=["outbox"])


@router.get("/outbox", response_model=list[OutboxPublic])
@access(Permission.VIEW)
def api_outbox(actor: CurrentActor, conn: ReadConn, status: str = "",
               limit: int = 100) -> list[dict[str, Any]]:
    if status and status not in outbox_service.STATUSES:
        raise InvalidInput("status: one of {statuses}", statuses=', '.join(outbox_service.STATUSES))
    return outbox_service.list_outbox(conn, actor=actor, status=status or None,
                                      limit=min(max(limit, 1), 1000))


@router.post("/outbox/{outbox_id}/retry", status_code=204)
@access(Permission.OPERATE)
def api_outbox_retry(outbox_id: int, actor: CurrentActor, runtime: RuntimeDep) -> None:
    with runtime.uow.write() as conn:
        outbox_service.do_retry(conn, actor=actor, outbox_id=outbox_id, now=runtime.now())
