"""The delivery log over the API: rows by status, and retrying a failed one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from qunyun.domain.staff import Permission
from qunyun.services import outbox as outbox_service
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access
from qunyun.web.listing import ListingQuery, answer
from qunyun.web.schemas import (
    OutboxPublic,
)

router = APIRouter(prefix="/api/v1", tags=["outbox"])


@router.get("/outbox", response_model=list[OutboxPublic])
@access(Permission.VIEW)
def api_outbox(response: Response, actor: CurrentActor, conn: ReadConn,
               listing: ListingQuery, status: str = "") -> list[dict[str, Any]]:
    """Delivery rows, newest first (``sort``: id, group, status, attempts, next_attempt),
    searched by group, rule or error, paged with the total in ``X-Total-Count``."""
    return answer(response, outbox_service.page_outbox(conn, actor=actor,
                                                       status=status or None, listing=listing))


@router.post("/outbox/{outbox_id}/retry", status_code=204)
@access(Permission.OPERATE)
def api_outbox_retry(outbox_id: int, actor: CurrentActor, runtime: RuntimeDep) -> None:
    with runtime.uow.write() as conn:
        outbox_service.do_retry(conn, actor=actor, outbox_id=outbox_id, now=runtime.now())
