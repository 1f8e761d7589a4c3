"""The audit log: one row per state change, written inside the change's own transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

from qunyun.adapters.storage.tables import audit_log
from qunyun.clock import utcnow
from qunyun.domain.staff import Permission

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


def list_audit(conn: Connection, *, actor: Actor, limit: int = 100,
               offset: int = 0) -> list[dict[str, Any]]:
    actor.require(Permission.MANAGE_USERS)
    rows = conn.execute(
        select(audit_log).order_by(audit_log.c.id.desc()).limit(limit).offset(offset)
    ).mappings()
    return [dict(r) for r in rows]


def count_audit(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())
