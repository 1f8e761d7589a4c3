"""Reports for staff: role check, input validation and the look-ups of what a report is
about, in front of the analytics — which are read-only functions of (connection, scope, time
zone) and import no services."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from qunyun.adapters.storage import mirror as copy_info
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.analytics import mirror
from qunyun.analytics.cohorts import KeptChanging, cohort_report
from qunyun.analytics.funnels import funnel
from qunyun.analytics.health import GroupHealth, group_health
from qunyun.analytics.mirror import MirrorSetup
from qunyun.analytics.overview import Overview, overview
from qunyun.domain.staff import Permission
from qunyun.services import members, outbox, tasks
from qunyun.services.activities import access_activity, series_by_ref
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.users import Actor


def parse_day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput("{name}: a date like 2026-11-01, not {value!r}",
                           name=name, value=value) from None


def get_group_health(conn: Connection, *, actor: Actor, tz: ZoneInfo, group_id: int | None,
                     since: str | None, until: str | None) -> list[GroupHealth]:
    actor.require(Permission.VIEW)
    try:
        reports = group_health(conn, tz=tz, group_id=group_id,
                               since=parse_day(since, "since"), until=parse_day(until, "until"))
    except ValueError as exc:
        raise InvalidInput.wrap(exc) from None
    if group_id is not None and not reports:
        raise NotFound("group {group_id} not found", group_id=group_id)
    return reports


def get_overview(conn: Connection, *, actor: Actor, tz: ZoneInfo) -> Overview:
    actor.require(Permission.VIEW)
    return overview(conn, tz=tz, members=members.count_members(conn),
                    open_tasks=tasks.count_open_tasks(conn), outbox=outbox.outbox_counts(conn))


def get_cohort_report(conn: Connection, *, actor: Actor, tz: ZoneInfo,
                      series: str | int | None = None, after_days: int = 21, weeks: int = 8,
                      period: str = "week", now: datetime | None = None,
                      with_activity: bool = True) -> dict[str, Any]:
    """Cohorts of one series (its code or id) or of every issue (None); see
    ``analytics.cohorts.cohort_report``."""
    actor.require(Permission.VIEW)
    if period not in ("week", "month"):
        raise InvalidInput("period: week or month")
    if not 1 <= after_days <= 365:
        raise InvalidInput("after_days: 1–365")
    if not 1 <= weeks <= 52:
        raise InvalidInput("weeks: 1–52")
    row = series_by_ref(conn, series) if series is not None else None
    try:
        return cohort_report(conn, tz=tz, series=row, after_days=after_days, weeks=weeks,
                             period=period, now=now, with_activity=with_activity)
    except KeptChanging:
        raise Conflict("activities kept changing while the report read them; try again"
                       ) from None


def get_funnel(conn: Connection, *, actor: Actor, tz: ZoneInfo, activity: int | str,
               now: datetime | None = None) -> dict[str, Any]:
    """An activity's funnel (its code or id), for staff who may see the activity."""
    return funnel(conn, tz=tz, activity=access_activity(conn, actor=actor, ref=activity),
                  now=now)


# --- the analytics mirror -------------------------------------------------------------------

def do_refresh_mirror(engine: Engine, setup: MirrorSetup, *,
                      actor: Actor) -> copy_info.MirrorInfo:
    """Copy the store into the mirror now (MirrorError names the file and the cause)."""
    actor.require(Permission.OPERATE)
    return mirror.refresh(engine, setup)


def do_start_mirror_refresh(engine: Engine, setup: MirrorSetup, *, actor: Actor) -> bool:
    """Start a refresh in the background (for the dashboard and the API); False when one
    is already running."""
    actor.require(Permission.OPERATE)
    return mirror.start_refresh(engine, setup)


def mirror_status(setup: MirrorSetup, *, actor: Actor) -> dict[str, Any]:
    actor.require(Permission.VIEW)
    return mirror.status(setup)


def read_cohorts(uow: UnitOfWork, setup: MirrorSetup, *, actor: Actor, tz: ZoneInfo,
                 **options: Any) -> dict[str, Any]:
    """The cohort report from the mirror when it is in use, else from the store; ``as_of``
    says the snapshot's time (None: live)."""
    with mirror.reading(setup, uow) as (conn, as_of):
        report = get_cohort_report(conn, actor=actor, tz=tz, **options)
    report["as_of"] = as_of.isoformat() if as_of is not None else None
    return report
