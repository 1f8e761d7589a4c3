"""The overview page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from qunyun.analytics.overview import overview
from qunyun.domain.staff import Permission
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, render

router = APIRouter(include_in_schema=False)


@router.get("/")
def dashboard(request: Request, actor: CurrentActor, runtime: RuntimeDep,
              conn: ReadConn) -> Response:
    actor.require(Permission.VIEW)
    data = overview(conn, tz=runtime.settings.tz)
    return render(request, "dashboard.html", {"o": data})
