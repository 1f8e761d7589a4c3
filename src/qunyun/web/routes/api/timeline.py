"""The JSON API under /api/v1 for the timeline: everything a group or member will receive from
every playbook and broadcast. Calls services only; roles are checked there."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter

from qunyun.domain.staff import Permission
from qunyun.services import timeline
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access

router = APIRouter(prefix="/api/v1", tags=["timeline"])


@router.get("/timeline")
@access(Permission.VIEW)
def timeline_preview(actor: CurrentActor, conn: ReadConn, runtime: RuntimeDep,
                     group_id: int | None = None, member_id: int | None = None,
                     start: date | None = None, days: int = 7) -> dict[str, Any]:
    """A group's (or member's) whole push timeline: every playbook and broadcast, placed
    under the caps and quiet hours, campaign steps before routine ones."""
    return timeline.preview_timeline(conn, actor=actor, group_id=group_id, member_id=member_id,
                                     start=start, days=days, clock=runtime.clock())
