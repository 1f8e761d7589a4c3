"""Groups over the API: list, detail and settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Response

from qunyun.domain.staff import Permission
from qunyun.services import dissolution, group_merges, group_roles, lifecycle, lurkers
from qunyun.services import groups as groups_service
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access
from qunyun.web.listing import ListingQuery, answer
from qunyun.web.schemas import (
    Dissolution,
    GroupDetail,
    GroupLink,
    GroupMemberOut,
    GroupMerge,
    GroupPlan,
    GroupPublic,
    GroupRoleChange,
    GroupStateChange,
    GroupUpdate,
    LurkerRemoval,
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
    """Settings; a ``state`` goes through the lifecycle (409 when not allowed from here),
    in the same transaction."""
    changes = body.model_dump(exclude_none=True)
    state = changes.pop("state", None)
    with runtime.uow.write() as conn:
        lifecycle.do_edit_group(conn, actor=actor, group_id=group_id, changes=changes,
                                state=state, now=runtime.now(), tz=runtime.settings.tz)
    with runtime.uow.read() as conn:
        return groups_service.get_group_detail(conn, actor=actor, group_id=group_id)


@router.post("/groups/{group_id}/state", response_model=GroupDetail)
@access(Permission.OPERATE)
def api_group_state(group_id: int, body: GroupStateChange, actor: CurrentActor,
                    runtime: RuntimeDep) -> dict[str, Any]:
    """Move a group to another state by hand, with a reason (audited)."""
    with runtime.uow.write() as conn:
        lifecycle.do_set_state(conn, actor=actor, group_id=group_id, state=body.state,
                               reason=body.reason, now=runtime.now(),
                               tz=runtime.settings.tz)
    with runtime.uow.read() as conn:
        return groups_service.get_group_detail(conn, actor=actor, group_id=group_id)


@router.get("/lifecycle/board")
@access(Permission.VIEW)
def api_groups_board(actor: CurrentActor, conn: ReadConn, runtime: RuntimeDep
                     ) -> list[dict[str, Any]]:
    """Groups by lifecycle state, each with what needs doing (``todo``)."""
    return lifecycle.board(conn, actor=actor, now=runtime.now(), tz=runtime.settings.tz)


@router.post("/lifecycle/advance")
@access(Permission.OPERATE)
def api_groups_advance(actor: CurrentActor, runtime: RuntimeDep) -> list[dict[str, Any]]:
    """Run the lifecycle rules now (the worker does it hourly); the moves made."""
    with runtime.uow.write() as conn:
        return lifecycle.do_advance(conn, actor=actor, now=runtime.now(),
                                    tz=runtime.settings.tz)


@router.get("/lifecycle/merge-candidates")
@access(Permission.VIEW)
def api_merge_candidates(actor: CurrentActor, conn: ReadConn, runtime: RuntimeDep,
                         max_members: int = 50, max_messages: int = 20, days: int = 7
                         ) -> list[dict[str, Any]]:
    """Running groups with at most ``max_members`` members and ``max_messages`` member
    messages in the last ``days`` days."""
    return group_merges.candidates(conn, actor=actor, max_members=max_members,
                                   max_messages=max_messages, days=days, now=runtime.now())


@router.post("/lifecycle/merges")
@access(Permission.OPERATE)
def api_merge(body: GroupMerge, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    """Merge small groups into a target (the plan with ``dry_run``, the default; else the
    merge started: invitations queued, the emptied groups dissolve after ``wait``)."""
    with runtime.uow.write() as conn:
        return group_merges.do_merge(
            conn, actor=actor, source_ids=body.source_ids, target_id=body.target_id,
            overflow_id=body.overflow_id, invite=body.invite,
            wait=timedelta(minutes=body.wait_minutes), gap=timedelta(minutes=body.gap_minutes),
            dry_run=body.dry_run, capabilities=runtime.capabilities, now=runtime.now())


@router.get("/lifecycle/merges")
@access(Permission.VIEW)
def api_merges(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return group_merges.list_merges(conn, actor=actor)


@router.get("/lifecycle/merges/{merge_id}")
@access(Permission.VIEW)
def api_merge_show(merge_id: int, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    """A merge with each member's move (invited, joined) and counts per destination."""
    return group_merges.access_merge(conn, actor=actor, merge_id=merge_id)


@router.post("/lifecycle/merges/{merge_id}/finish")
@access(Permission.OPERATE)
def api_merge_finish(merge_id: int, actor: CurrentActor, runtime: RuntimeDep
                     ) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return group_merges.do_finish(conn, actor=actor, merge_id=merge_id,
                                      capabilities=runtime.capabilities, now=runtime.now())


@router.post("/groups", response_model=GroupDetail, status_code=201)
@access(Permission.OPERATE)
def api_group_plan(body: GroupPlan, actor: CurrentActor, runtime: RuntimeDep
                   ) -> dict[str, Any]:
    """Plan a group before its chat exists (state planned)."""
    with runtime.uow.write() as conn:
        row = lifecycle.do_plan_group(conn, actor=actor, platform=body.platform,
                                      name=body.name, group_type=body.group_type,
                                      capacity=body.capacity, starts_at=body.starts_at,
                                      now=runtime.now())
    with runtime.uow.read() as conn:
        return groups_service.get_group_detail(conn, actor=actor, group_id=row["id"])


@router.post("/groups/{group_id}/link", response_model=GroupDetail)
@access(Permission.OPERATE)
def api_group_link(group_id: int, body: GroupLink, actor: CurrentActor, runtime: RuntimeDep
                   ) -> dict[str, Any]:
    """Tie a planned group to its chat (the platform's id); the plan is kept."""
    with runtime.uow.write() as conn:
        row = lifecycle.do_link_chat(conn, actor=actor, group_id=group_id, chat_id=body.chat,
                                     now=runtime.now())
    with runtime.uow.read() as conn:
        return groups_service.get_group_detail(conn, actor=actor, group_id=row["id"])


@router.get("/groups/{group_id}/lurkers")
@access(Permission.VIEW)
def api_group_lurkers(group_id: int, actor: CurrentActor, conn: ReadConn,
                      runtime: RuntimeDep, days: int = 30) -> list[dict[str, Any]]:
    """Members silent for ``days`` days (never staff or the owner), the quietest first."""
    return lurkers.list_lurkers(conn, actor=actor, group_id=group_id, days=days,
                                now=runtime.now())


@router.post("/groups/{group_id}/lurkers/remove")
@access(Permission.OPERATE)
def api_group_lurkers_remove(group_id: int, body: LurkerRemoval, actor: CurrentActor,
                             runtime: RuntimeDep) -> dict[str, Any]:
    """Remove the chosen lurkers with a notice (``dry_run``: who would go, nothing queued)."""
    with runtime.uow.write() as conn:
        return lurkers.do_remove_lurkers(
            conn, actor=actor, group_id=group_id, days=body.days, member_ids=body.member_ids,
            notice=body.notice, dry_run=body.dry_run, capabilities=runtime.capabilities,
            now=runtime.now())


@router.post("/groups/{group_id}/dissolve")
@access(Permission.OPERATE)
def api_group_dissolve(group_id: int, body: Dissolution, actor: CurrentActor,
                       runtime: RuntimeDep) -> dict[str, Any]:
    """The dissolution SOP's four steps (``dry_run``, the default: shown, nothing started)."""
    with runtime.uow.write() as conn:
        return dissolution.do_dissolve(
            conn, actor=actor, group_id=group_id, gap=timedelta(minutes=body.gap_minutes),
            notice=body.notice, new_name=body.new_name, dry_run=body.dry_run,
            capabilities=runtime.capabilities, now=runtime.now())


@router.get("/groups/{group_id}/roles")
@access(Permission.VIEW)
def api_group_roles(group_id: int, actor: CurrentActor, conn: ReadConn
                    ) -> list[dict[str, Any]]:
    """Who does what in the group for the team (owner, presenter, expert, atmosphere,
    advisor)."""
    return group_roles.list_roles(conn, actor=actor, group_id=group_id)


@router.post("/groups/{group_id}/roles")
@access(Permission.OPERATE)
def api_group_role(group_id: int, body: GroupRoleChange, actor: CurrentActor,
                   runtime: RuntimeDep) -> list[dict[str, Any]]:
    """Give a member a role in the group, or take it away (``remove``)."""
    with runtime.uow.write() as conn:
        return group_roles.do_set_role(conn, actor=actor, group_id=group_id,
                                       member_id=body.member_id, role=body.role,
                                       remove=body.remove, now=runtime.now())
