"""The exports page: every kind of data as a CSV or XLSX download (the API's)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from qunyun.domain.staff import Permission
from qunyun.services import exports
from qunyun.services.plans import list_plans
from qunyun.web.deps import CurrentActor, ReadConn, access, render

router = APIRouter(include_in_schema=False)


@router.get("/exports")
@access(Permission.VIEW)
def exports_page(request: Request, actor: CurrentActor, conn: ReadConn) -> Response:
    return render(request, "exports.html", {
        "kinds": [k for k in exports.KINDS if k != "plan"],
        "plans": list_plans(conn, actor=actor)})
