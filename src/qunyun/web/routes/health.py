"""Group health pages: the table for all groups, one group's charts, the offline report."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from qunyun.analytics.health import GroupHealth, group_health
from qunyun.domain.staff import Permission
from qunyun.services import groups as groups_service
from qunyun.services.errors import InvalidInput, NotFound
from qunyun.services.users import Actor
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, language, render
from qunyun.web.report import render_health_html

router = APIRouter(include_in_schema=False)


def parse_day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name}: a date like 2026-11-01") from None


def health_reports(conn: ReadConn, runtime: RuntimeDep, actor: Actor, group: int | None,
                   since: str | None, until: str | None) -> list[GroupHealth]:
    """Shared by the page, the offline report and the API: validate, check role, compute."""
    actor.require(Permission.VIEW)
    try:
        reports = group_health(conn, tz=runtime.settings.tz, group_id=group,
                               since=parse_day(since, "since"), until=parse_day(until, "until"))
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if group is not None and not reports:
        raise NotFound(f"group {group} not found")
    return reports


@router.get("/health")
def health_page(request: Request, actor: CurrentActor, runtime: RuntimeDep, conn: ReadConn,
                group: int | None = None, since: str | None = None,
                until: str | None = None) -> Response:
    reports = health_reports(conn, runtime, actor, None, since, until)
    detail = next((r for r in reports if r.id == group), None)
    if group is not None and detail is None:
        raise NotFound(f"group {group} not found")
    query = urlencode({k: v for k, v in (("since", since), ("until", until)) if v})
    return render(request, "health.html", {
        "reports": reports, "detail": detail, "selected": group, "since": since,
        "until": until, "query": query,
        "all_groups": groups_service.list_groups(conn, actor=actor)})


@router.get("/health/report.html")
def health_report_file(request: Request, actor: CurrentActor, runtime: RuntimeDep,
                       conn: ReadConn, group: int | None = None, since: str | None = None,
                       until: str | None = None) -> Response:
    reports = health_reports(conn, runtime, actor, group, since, until)
    html = render_health_html(reports, language=language(request),
                              timezone=runtime.settings.timezone)
    return HTMLResponse(html, headers={
        "Content-Disposition": 'attachment; filename="qunyun-group-health.html"'})
