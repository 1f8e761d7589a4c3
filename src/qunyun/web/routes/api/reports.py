"""The overview and group health over the API: figures, alerts and the alert check."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from qunyun.analytics.health import GroupHealth
from qunyun.analytics.overview import Overview
from qunyun.domain.staff import Permission
from qunyun.services import health
from qunyun.services.channel_report import get_channel_report
from qunyun.services.inbox import get_inbox
from qunyun.services.reports import get_group_health, get_overview, parse_day
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access
from qunyun.web.outputs import AlertOut, ChannelReportOut

router = APIRouter(prefix="/api/v1", tags=["reports"])


@router.get("/overview", response_model=Overview)
@access(Permission.VIEW)
def api_overview(actor: CurrentActor, runtime: RuntimeDep, conn: ReadConn) -> Overview:
    return get_overview(conn, actor=actor, tz=runtime.settings.tz)


@router.get("/inbox")
@access(Permission.VIEW)
def api_inbox(actor: CurrentActor, runtime: RuntimeDep, conn: ReadConn) -> dict[str, Any]:
    """What needs a person today: open tasks, follow-ups due today, moderation reviews,
    open health alerts, failed sends — each with a count, a link and the first items."""
    return get_inbox(conn, actor=actor, clock=runtime.clock()).as_dict()


@router.get("/reports/alerts", response_model=list[AlertOut])
@access(Permission.VIEW)
def api_health_alerts(actor: CurrentActor, conn: ReadConn,
                      group_id: int | None = None) -> list[dict[str, Any]]:
    """Group health alerts raised (each once, as a staff task), newest first."""
    return health.list_alerts(conn, actor=actor, group_id=group_id)


@router.post("/reports/alerts/check", response_model=list[AlertOut])
@access(Permission.OPERATE)
def api_health_alerts_check(actor: CurrentActor, runtime: RuntimeDep) -> list[dict[str, Any]]:
    """Check every running group now (the worker does it hourly); returns the new alerts."""
    with runtime.uow.write() as conn:
        return health.do_raise_alerts(conn, tz=runtime.settings.tz, actor=actor)


@router.get("/reports/groups", response_model=list[GroupHealth])
@access(Permission.VIEW)
def api_report_groups(actor: CurrentActor, runtime: RuntimeDep, conn: ReadConn,
                      group_id: int | None = None, since: str | None = None,
                      until: str | None = None) -> list[GroupHealth]:
    """Group health for one group or all, over a date range in the team's time zone."""
    return get_group_health(conn, actor=actor, tz=runtime.settings.tz, group_id=group_id,
                            since=since, until=until)


@router.get("/reports/channels", response_model=ChannelReportOut)
@access(Permission.VIEW)
def api_report_channels(actor: CurrentActor, runtime: RuntimeDep, conn: ReadConn,
                        model: str = "first", by: str = "channel", since: str | None = None,
                        until: str | None = None,
                        activity: str | None = None) -> dict[str, Any]:
    """Which channel (``by=channel``) or inviter (``by=inviter``) brought the members who
    enrolled, paid and purchased; ``model=first`` credits a member's first join,
    ``model=last`` the latest touch before each outcome. Members are chosen by their first
    join in the period (team days); ``activity`` keeps one issue's outcomes."""
    return get_channel_report(conn, actor=actor, tz=runtime.settings.tz, model=model, by=by,
                              since=parse_day(since, "since"), until=parse_day(until, "until"),
                              activity=activity).to_json()
