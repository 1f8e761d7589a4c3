"""The audit log page (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from qunyun.domain.staff import Permission
from qunyun.services import audit as audit_service
from qunyun.services.users import username_of
from qunyun.web.deps import CurrentActor, ReadConn, access, render
from qunyun.web.listing import ListingQuery

router = APIRouter(include_in_schema=False)


@router.get("/audit")
@access(Permission.MANAGE_USERS)
def audit_page(request: Request, actor: CurrentActor, conn: ReadConn,
               listing: ListingQuery) -> Response:
    result = audit_service.page_audit(conn, actor=actor, listing=listing)
    rows = [{**r, "who": username_of(r["actor"])} for r in result.rows]
    return render(request, "audit.html", {"rows": rows, "p": result})
