"""Group health pages: the table for all groups, one group's charts, the offline report."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from qunyun.domain.staff import Permission
from qunyun.services import groups as groups_service
from qunyun.services import health
from qunyun.services.errors import NotFound
from qunyun.services.reports import get_group_health
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, language, render
from qunyun.web.report import render_health_html

router = APIRouter(include_in_schema=False)


@router.get("/health")
@access(Permission.VIEW)
def health_page(request: Request, actor: CurrentActor, runtime: RuntimeDep, conn: ReadConn,
                group: int | None = None, since: str | None = None,
                until: str | None = None) -> Response:
    reports = get_group_health(conn, actor=actor, tz=runtime.settings.tz, group_id=None,
                               since=since, until=until)
    detail = next((r for r in reports if r.id == group), None)
    if group is not None and detail is None:
        raise NotFound("group {group} not found", group=group)
    query = urlencode({k: v for k, v in (("since", since), ("until", until)) if v})
    return render(request, "health.html", {
        "reports": reports, "detail": detail, "selected": group, "since": since,
        "until": until, "query": query,
        "all_groups": groups_service.list_groups(conn, actor=actor),
        "alerts": health.list_alerts(conn, actor=actor, group_id=group, limit=20)})


@router.get("/health/report.html")
@access(Permission.VIEW)
def health_report_file(request: Request, actor: CurrentActor, runtime: RuntimeDep,
                       conn: ReadConn, group: int | None = None, since: str | None = None,
                       until: str | None = None) -> Response:
    reports = get_group_health(conn, actor=actor, tz=runtime.settings.tz, group_id=group,
                               since=since, until=until)
    html = render_health_html(reports, language=language(request),
                              timezone=runtime.settings.timezone)
    return HTMLResponse(html, headers={
        "Content-Disposition": 'attachment; filename="qunyun-group-health.html"'})
