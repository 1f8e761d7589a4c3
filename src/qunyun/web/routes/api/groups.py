"""Groups over the API: list, detail and settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from qunyun.domain.staff import Permission
from qunyun.services import groups as groups_service
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access
from qunyun.web.listing import ListingQuery, answer
from qunyun.web.schemas import (
    GroupDetail,
    GroupMemberOut,
    GroupPublic,
    GroupUpdate,
)

router = APIRouter(prefix="/api/v1", tags=["groups"])


@router.get("/groups", response_model=list[GroupPublic])
@access(Permission.VIEW)
def api_groups(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return groups_service.list_groups(conn, actor=actor)


@router.get("/groups/{group_id}", response_model=GroupDetail)
@access(Permission.VIEW)
def api_group(group_id: int, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    return groups_service.get_group_detail(conn, actor=actor, group_id=group_id)


@router.get("/groups/{group_id}/members", response_model=list[GroupMemberOut])
@access(Permission.VIEW)
def api_group_members(group_id: int, response: Response, actor: CurrentActor, conn: ReadConn,
                      listing: ListingQuery) -> list[dict[str, Any]]:
    """Who is in the group now, searched by name, number or channel, sorted (joined_at,
    number, name, channel, last_seen) and paged with the total in ``X-Total-Count``."""
    return answer(response, groups_service.page_group_members(conn, actor=actor,
                                                              group_id=group_id,
                                                              listing=listing))


@router.patch("/groups/{group_id}", response_model=GroupDetail)
@access(Permission.OPERATE)
def api_group_update(group_id: int, body: GroupUpdate, actor: CurrentActor,
                     runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        groups_service.do_update_group(conn, actor=actor, group_id=group_id,
                                       changes=body.model_dump(exclude_none=True),
                                       now=runtime.now())
    with runtime.uow.read() as conn:
        return groups_service.get_group_detail(conn, actor=actor, group_id=group_id)
