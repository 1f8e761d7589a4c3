"""Reports for staff: role check and input validation in front of the analytics."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from qunyun.analytics.health import GroupHealth, group_health
from qunyun.analytics.overview import Overview, overview
from qunyun.domain.staff import Permission
from qunyun.services.errors import InvalidInput, NotFound
from qunyun.services.users import Actor


def parse_day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name}: a date like 2026-11-01, not {value!r}") from None


def get_group_health(conn: Connection, *, actor: Actor, tz: ZoneInfo, group_id: int | None,
                     since: str | None, until: str | None) -> list[GroupHealth]:
    actor.require(Permission.VIEW)
    try:
        reports = group_health(conn, tz=tz, group_id=group_id,
                               since=parse_day(since, "since"), until=parse_day(until, "until"))
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if group_id is not None and not reports:
        raise NotFound(f"group {group_id} not found")
    return reports


def get_overview(conn: Connection, *, actor: Actor, tz: ZoneInfo) -> Overview:
    actor.require(Permission.VIEW)
    return overview(conn, tz=tz)
