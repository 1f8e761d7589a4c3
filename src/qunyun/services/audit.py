"""The audit log: one row per state change, written inside the change's own transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

from qunyun.adapters.storage.tables import audit_log
from qunyun.clock import utcnow
from qunyun.domain.staff import Permission
from qunyun.services.listing import Columns, Listing, Page, fetch

if TYPE_CHECKING:
    from qunyun.services.users import Actor


def record(
    conn: Connection,
    *,
    actor: str,
    action: str,
    object_type: str = "",
    object_id: object = "",
    detail: dict[str, Any] | None = None,
) -> None:
    conn.execute(audit_log.insert().values(
        at=utcnow(), actor=actor, action=action, object_type=object_type,
        object_id=str(object_id), detail=detail or {}))


AUDIT_COLUMNS = Columns(
    sortable={"at": (audit_log.c.id, "desc"), "actor": (audit_log.c.actor, "asc"),
              "action": (audit_log.c.action, "asc")},
    searched=(audit_log.c.actor, audit_log.c.action, audit_log.c.object_type,
              audit_log.c.object_id), tiebreak=audit_log.c.id.desc())


def page_audit(conn: Connection, *, actor: Actor, listing: Listing = Listing()) -> Page:
    """The audit log, newest first, searched by who, what action or which object."""
    actor.require(Permission.MANAGE_USERS)
    return fetch(conn, select(audit_log), listing, AUDIT_COLUMNS)


def list_audit(conn: Connection, *, actor: Actor, limit: int = 100) -> list[dict[str, Any]]:
    return page_audit(conn, actor=actor, listing=Listing(per_page=limit)).rows


def count_audit(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())
