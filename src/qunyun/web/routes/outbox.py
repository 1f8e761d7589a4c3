"""The delivery log."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.domain.staff import Permission
from qunyun.services import outbox as outbox_service
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, render
from qunyun.web.listing import ListingQuery

router = APIRouter(include_in_schema=False)


@router.get("/outbox")
@access(Permission.VIEW)
def outbox_page(request: Request, actor: CurrentActor, conn: ReadConn, listing: ListingQuery,
                status: str = "") -> Response:
    result = outbox_service.page_outbox(conn, actor=actor, status=status or None,
                                        listing=listing)
    return render(request, "outbox.html", {
        "p": result, "rows": result.rows, "status": status,
        "statuses": outbox_service.STATUSES,
        "counts": outbox_service.outbox_counts(conn)})


@router.post("/outbox/{outbox_id}/retry")
@access(Permission.OPERATE)
def outbox_retry(outbox_id: int, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    with runtime.uow.write() as conn:
        outbox_service.do_retry(conn, actor=actor, outbox_id=outbox_id, now=runtime.now())
    return RedirectResponse("/outbox", status_code=303)
