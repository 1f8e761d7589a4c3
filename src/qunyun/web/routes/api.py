"""JSON API under /api/v1 (OpenAPI at /api/v1/openapi.json). Calls services only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from qunyun.analytics.health import GroupHealth
from qunyun.analytics.overview import Overview
from qunyun.clock import utcnow
from qunyun.domain.staff import Permission
from qunyun.services import groups as groups_service
from qunyun.services import health, segments, users
from qunyun.services import members as members_service
from qunyun.services import outbox as outbox_service
from qunyun.services import tasks as tasks_service
from qunyun.services.errors import InvalidInput, NotFound
from qunyun.services.ingest import do_ingest_raw
from qunyun.services.reports import get_group_health, get_overview
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access
from qunyun.web.schemas import (
    GroupDetail,
    GroupPublic,
    GroupUpdate,
    IngestOut,
    Me,
    MemberDetail,
    MemberPublic,
    OutboxPublic,
    TaskDone,
    TaskPublic,
    UserCreate,
    UserPublic,
)

router = APIRouter(prefix="/api/v1", tags=["api"])


@router.get("/me", response_model=Me)
@access(Permission.VIEW)
def me(actor: CurrentActor) -> Me:
    return Me(id=actor.id, username=actor.username, role=actor.role.value,
              language=actor.language)


@router.get("/overview", response_model=Overview)
@access(Permission.VIEW)
def api_overview(actor: CurrentActor, runtime: RuntimeDep, conn: ReadConn) -> Overview:
    return get_overview(conn, actor=actor, tz=runtime.settings.tz)


@router.get("/reports/alerts")
@access(Permission.VIEW)
def api_health_alerts(actor: CurrentActor, conn: ReadConn,
                      group_id: int | None = None) -> list[dict[str, Any]]:
    """Group health alerts raised (each once, as a staff task), newest first."""
    return health.list_alerts(conn, actor=actor, group_id=group_id)


@router.post("/reports/alerts/check")
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


@router.get("/groups", response_model=list[GroupPublic])
@access(Permission.VIEW)
def api_groups(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return groups_service.list_groups(conn, actor=actor)


@router.get("/groups/{group_id}", response_model=GroupDetail)
@access(Permission.VIEW)
def api_group(group_id: int, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    return groups_service.get_group_detail(conn, actor=actor, group_id=group_id)


@router.patch("/groups/{group_id}", response_model=GroupDetail)
@access(Permission.OPERATE)
def api_group_update(group_id: int, body: GroupUpdate, actor: CurrentActor,
                     runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        groups_service.do_update_group(conn, actor=actor, group_id=group_id,
                                       changes=body.model_dump(exclude_none=True), now=utcnow())
    with runtime.uow.read() as conn:
        return groups_service.get_group_detail(conn, actor=actor, group_id=group_id)


@router.get("/members", response_model=list[MemberPublic])
@access(Permission.VIEW)
def api_members(actor: CurrentActor, runtime: RuntimeDep, conn: ReadConn, q: str = "",
                segment: str = "", limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """Search by nickname or member number, or list a segment (an expression)."""
    if not 1 <= limit <= 500 or offset < 0:
        raise InvalidInput("limit: 1–500; offset: 0 or more")
    if segment:
        return segments.list_expression_members(conn, actor=actor, expression=segment,
                                                clock=runtime.clock(), limit=limit,
                                                offset=offset)
    return members_service.list_members(conn, actor=actor, query=q, limit=limit, offset=offset)


@router.get("/members/{member_id}", response_model=MemberDetail)
@access(Permission.VIEW)
def api_member(member_id: int, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    return members_service.access_member_by_id(conn, actor=actor, member_id=member_id)


@router.get("/tasks", response_model=list[TaskPublic])
@access(Permission.VIEW)
def api_tasks(actor: CurrentActor, conn: ReadConn, status: str = "open") -> list[dict[str, Any]]:
    return tasks_service.list_tasks(conn, actor=actor, status=None if status == "all" else status)


@router.post("/tasks/{task_id}/done", response_model=TaskPublic)
@access(Permission.WORK_TASKS)
def api_task_done(task_id: int, body: TaskDone, actor: CurrentActor,
                  runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return tasks_service.do_complete_task(conn, actor=actor, task_id=task_id,
                                              outcome=body.outcome, dismiss=body.dismiss,
                                              now=utcnow())


@router.get("/outbox", response_model=list[OutboxPublic])
@access(Permission.VIEW)
def api_outbox(actor: CurrentActor, conn: ReadConn, status: str = "",
               limit: int = 100) -> list[dict[str, Any]]:
    if status and status not in outbox_service.STATUSES:
        raise InvalidInput("status: one of {statuses}", statuses=', '.join(outbox_service.STATUSES))
    return outbox_service.list_outbox(conn, actor=actor, status=status or None,
                                      limit=min(max(limit, 1), 1000))


@router.post("/outbox/{outbox_id}/retry", status_code=204)
@access(Permission.OPERATE)
def api_outbox_retry(outbox_id: int, actor: CurrentActor, runtime: RuntimeDep) -> None:
    with runtime.uow.write() as conn:
        outbox_service.do_retry(conn, actor=actor, outbox_id=outbox_id, now=utcnow())


@router.get("/users", response_model=list[UserPublic])
@access(Permission.MANAGE_USERS)
def api_users(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return users.list_users(conn, actor=actor)


@router.post("/users", response_model=UserPublic, status_code=201)
@access(Permission.MANAGE_USERS)
def api_user_create(body: UserCreate, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        created = users.do_create_user(conn, actor=actor, username=body.username,
                                       password=body.password, role=body.role,
                                       language=body.language, display_name=body.display_name)
    with runtime.uow.read() as conn:
        return next(u for u in users.list_users(conn, actor=actor) if u["id"] == created.id)


@router.post("/ingest/{platform}", response_model=IngestOut)
@access(Permission.OPERATE)
async def api_ingest(platform: str, request: Request, actor: CurrentActor,
                     runtime: RuntimeDep) -> IngestOut:
    """Feed one raw platform payload (JSON) through the event path (sandbox and simulator)."""
    adapter = runtime.adapters.get(platform)
    if adapter is None:
        raise NotFound("no adapter for platform {platform!r}", platform=platform)
    try:
        raw = await request.json()
    except ValueError:
        raise InvalidInput("body is not valid JSON") from None
    if not isinstance(raw, dict):
        raise InvalidInput("body must be a JSON object")
    with runtime.uow.write() as conn:
        result = do_ingest_raw(conn, actor=actor, adapter=adapter, raw=raw,
                               config=runtime.ingest_config)
    return IngestOut(**result.__dict__)
