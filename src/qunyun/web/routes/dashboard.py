"""The overview page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from qunyun.domain.staff import Permission
from qunyun.services.inbox import get_inbox
from qunyun.services.reports import get_overview
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, render

router = APIRouter(include_in_schema=False)


@router.get("/")
@access(Permission.VIEW)
def dashboard(request: Request, actor: CurrentActor, runtime: RuntimeDep,
              conn: ReadConn) -> Response:
    data = get_overview(conn, actor=actor, tz=runtime.settings.tz)
    return render(request, "dashboard.html", {
        "o": data, "inbox": get_inbox(conn, actor=actor, clock=runtime.clock())})
