"""Group list, group detail and settings, a group's state, and the lifecycle board."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.domain.groups import GroupRole, GroupType, Thresholds, is_placeholder
from qunyun.domain.staff import Permission
from qunyun.services import dissolution, group_merges, group_roles, lifecycle, lurkers
from qunyun.services import groups as groups_service
from qunyun.services.errors import InvalidInput
from qunyun.services.groups import EDITABLE
from qunyun.services.members import member_id_by_number
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, render
from qunyun.web.forms import form_int, local_time
from qunyun.web.listing import ListingQuery

router = APIRouter(include_in_schema=False)


@router.get("/groups")
@access(Permission.VIEW)
def groups_page(request: Request, actor: CurrentActor, conn: ReadConn) -> Response:
    return render(request, "groups.html",
                  {"groups": groups_service.list_groups(conn, actor=actor)})


@router.get("/groups/{group_id}")
@access(Permission.VIEW)
def group_page(request: Request, group_id: int, actor: CurrentActor, conn: ReadConn,
               listing: ListingQuery, saved: bool = False) -> Response:
    group = groups_service.get_group_detail(conn, actor=actor, group_id=group_id)
    people = groups_service.page_group_members(conn, actor=actor, group_id=group_id,
                                               listing=listing)
    return render(request, "group.html", {
        "g": group, "p": people, "saved": saved, "group_types": [t.value for t in GroupType],
        "thresholds": Thresholds.of(group["settings"]),
        "placeholder": is_placeholder(group["external_id"]),
        "roles": group_roles.list_roles(conn, actor=actor, group_id=group_id),
        "role_codes": [r.value for r in GroupRole]})


@router.post("/groups/{group_id}")
@access(Permission.OPERATE)
async def group_save(request: Request, group_id: int, actor: CurrentActor,
                     runtime: RuntimeDep) -> Response:
    form = await request.form()
    changes: dict[str, Any] = {k: str(v) for k, v in form.items() if k in EDITABLE}
    if "starts_at" in changes:  # the picker's local time in the team's time zone
        changes["starts_at"] = (local_time(changes["starts_at"], runtime, "starts_at")
                                if changes["starts_at"].strip() else None)
    with runtime.uow.write() as conn:
        groups_service.do_update_group(conn, actor=actor, group_id=group_id, changes=changes,
                                       now=runtime.now())
    return RedirectResponse(f"/groups/{group_id}?saved=1", status_code=303)


@router.post("/groups/{group_id}/state")
@access(Permission.OPERATE)
async def group_state(request: Request, group_id: int, actor: CurrentActor,
                      runtime: RuntimeDep) -> Response:
    """Move the group's state by hand (the choices are the ones allowed from here)."""
    form = await request.form()
    with runtime.uow.write() as conn:
        lifecycle.do_set_state(conn, actor=actor, group_id=group_id,
                               state=str(form.get("state") or ""),
                               reason=str(form.get("reason") or ""), now=runtime.now(),
                               tz=runtime.settings.tz)
    return RedirectResponse(f"/groups/{group_id}?saved=1", status_code=303)


@router.get("/lifecycle")
@access(Permission.VIEW)
def lifecycle_page(request: Request, actor: CurrentActor, conn: ReadConn,
                   runtime: RuntimeDep, moved: int | None = None) -> Response:
    """The lifecycle board: groups by state, each with what needs doing."""
    columns = lifecycle.board(conn, actor=actor, now=runtime.now(), tz=runtime.settings.tz)
    return render(request, "lifecycle.html", {
        "columns": columns, "moved": moved, "platforms": sorted(runtime.adapters),
        "group_types": [t.value for t in GroupType]})


@router.post("/lifecycle/advance")
@access(Permission.OPERATE)
def lifecycle_advance(actor: CurrentActor, runtime: RuntimeDep) -> Response:
    """Run the lifecycle rules now."""
    with runtime.uow.write() as conn:
        moves = lifecycle.do_advance(conn, actor=actor, now=runtime.now(),
                                     tz=runtime.settings.tz)
    return RedirectResponse(f"/lifecycle?moved={len(moves)}", status_code=303)


def _merge_form(form: Any) -> dict[str, Any]:
    """The merge form's choices, each id checked (a forged 2**64 is a refusal, not a
    database error)."""
    def one(value: Any, field: str) -> int:
        number = form_int(str(value), field)
        if not 1 <= number <= 2**62:
            raise InvalidInput("{field}: not a group", field=field)
        return number

    overflow = str(form.get("overflow_id") or "").strip()
    return {"source_ids": [one(v, "source_ids") for v in form.getlist("source_ids")],
            "target_id": one(form.get("target_id") or 0, "target_id"),
            "overflow_id": one(overflow, "overflow_id") if overflow else None,
            "invite": str(form.get("invite") or "").strip() or None,
            "wait_days": form_int(str(form.get("wait_days") or "3"), "wait_days"),
            "gap_hours": form_int(str(form.get("gap_hours") or "24"), "gap_hours")}


@router.get("/lifecycle/merges")
@access(Permission.VIEW)
def merges_page(request: Request, actor: CurrentActor, conn: ReadConn, runtime: RuntimeDep,
                max_members: int = 50, max_messages: int = 20, days: int = 7) -> Response:
    """Small or quiet groups to merge, the merge form, and the merges so far."""
    return render(request, "merges.html", {
        "candidates": group_merges.candidates(
            conn, actor=actor, max_members=max_members, max_messages=max_messages, days=days,
            now=runtime.now()),
        "max_members": max_members, "max_messages": max_messages, "days": days,
        "targets": [g for g in groups_service.list_groups(conn, actor=actor)
                    if g["state"] in group_merges.TARGET_STATES],
        "merges": group_merges.list_merges(conn, actor=actor), "form": None, "plan": None,
        "default_invite": group_merges.DEFAULT_INVITE})


@router.post("/lifecycle/merges")
@access(Permission.OPERATE)
async def merges_start(request: Request, actor: CurrentActor, runtime: RuntimeDep
                       ) -> Response:
    """Preview the merge (the default), or start it."""
    form = await request.form()
    chosen = _merge_form(form)
    start = form.get("go") == "start"
    with runtime.uow.write() as conn:
        plan = group_merges.do_merge(
            conn, actor=actor, source_ids=chosen["source_ids"], target_id=chosen["target_id"],
            overflow_id=chosen["overflow_id"], invite=chosen["invite"],
            wait=timedelta(days=chosen["wait_days"]),
            gap=timedelta(hours=chosen["gap_hours"]), dry_run=not start,
            capabilities=runtime.capabilities, now=runtime.now())
        if not start:
            names = {g["id"]: g["name"] for g in groups_service.list_groups(conn, actor=actor)}
    if start:
        return RedirectResponse(f"/lifecycle/merges/{plan['merge_id']}", status_code=303)
    return render(request, "merges.html", {
        "candidates": [], "targets": [], "merges": [], "form": chosen, "plan": plan,
        "names": names, "default_invite": group_merges.DEFAULT_INVITE})


@router.get("/lifecycle/merges/{merge_id}")
@access(Permission.VIEW)
def merge_page(request: Request, merge_id: int, actor: CurrentActor, conn: ReadConn
               ) -> Response:
    merge = group_merges.access_merge(conn, actor=actor, merge_id=merge_id)
    names = {g["id"]: g["name"] for g in groups_service.list_groups(conn, actor=actor)}
    return render(request, "merge.html", {"m": merge, "names": names})


@router.post("/lifecycle/merges/{merge_id}/finish")
@access(Permission.OPERATE)
def merge_finish(merge_id: int, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    with runtime.uow.write() as conn:
        group_merges.do_finish(conn, actor=actor, merge_id=merge_id,
                               capabilities=runtime.capabilities, now=runtime.now())
    return RedirectResponse(f"/lifecycle/merges/{merge_id}", status_code=303)


@router.post("/lifecycle/plan")
@access(Permission.OPERATE)
async def lifecycle_plan(request: Request, actor: CurrentActor, runtime: RuntimeDep
                         ) -> Response:
    """Plan a group before its chat exists."""
    form = await request.form()
    starts = str(form.get("starts_at") or "")
    with runtime.uow.write() as conn:
        row = lifecycle.do_plan_group(
            conn, actor=actor, platform=str(form.get("platform") or ""),
            name=str(form.get("name") or ""),
            group_type=str(form.get("group_type") or "temporary"),
            capacity=form_int(str(form.get("capacity") or "200"), "capacity"),
            starts_at=local_time(starts, runtime, "starts_at") if starts.strip() else None,
            now=runtime.now())
    return RedirectResponse(f"/groups/{row['id']}?saved=1", status_code=303)


@router.post("/groups/{group_id}/link")
@access(Permission.OPERATE)
async def group_link(request: Request, group_id: int, actor: CurrentActor,
                     runtime: RuntimeDep) -> Response:
    """Tie a planned group to its chat."""
    form = await request.form()
    with runtime.uow.write() as conn:
        row = lifecycle.do_link_chat(conn, actor=actor, group_id=group_id,
                                     chat_id=str(form.get("chat") or ""), now=runtime.now())
    return RedirectResponse(f"/groups/{row['id']}?saved=1", status_code=303)


@router.get("/groups/{group_id}/lurkers")
@access(Permission.VIEW)
def lurkers_page(request: Request, group_id: int, actor: CurrentActor, conn: ReadConn,
                 runtime: RuntimeDep, days: int = 30) -> Response:
    """Members silent for N days, to choose and remove with a notice."""
    group = groups_service.access_group_by_id(conn, actor=actor, group_id=group_id)
    rows = lurkers.list_lurkers(conn, actor=actor, group_id=group_id, days=days,
                                now=runtime.now())
    return render(request, "lurkers.html", {"g": group, "rows": rows, "days": days,
                                            "notice": lurkers.DEFAULT_NOTICE, "result": None,
                                            "chosen": set()})


@router.post("/groups/{group_id}/lurkers")
@access(Permission.OPERATE)
async def lurkers_remove(request: Request, group_id: int, actor: CurrentActor,
                         runtime: RuntimeDep) -> Response:
    """Preview (the default) or remove the ticked members."""
    form = await request.form()
    days = form_int(str(form.get("days") or "30"), "days")
    ids = [form_int(str(v), "member_ids") for v in form.getlist("member_ids")]
    dry_run = form.get("go") != "remove"
    with runtime.uow.write() as conn:
        result = lurkers.do_remove_lurkers(
            conn, actor=actor, group_id=group_id, days=days, member_ids=ids,
            notice=str(form.get("notice") or ""), dry_run=dry_run,
            capabilities=runtime.capabilities, now=runtime.now())
        group = groups_service.access_group_by_id(conn, actor=actor, group_id=group_id)
        rows = lurkers.list_lurkers(conn, actor=actor, group_id=group_id, days=days,
                                    now=runtime.now())
    return render(request, "lurkers.html", {"g": group, "rows": rows, "days": days,
                                            "notice": str(form.get("notice") or ""),
                                            "result": result, "chosen": set(ids)})


@router.post("/groups/{group_id}/dissolve")
@access(Permission.OPERATE)
async def group_dissolve(request: Request, group_id: int, actor: CurrentActor,
                         runtime: RuntimeDep) -> Response:
    """Preview the dissolution SOP's steps (the default), or start it."""
    form = await request.form()
    hours = form_int(str(form.get("gap_hours") or "24"), "gap_hours")
    start = form.get("go") == "start"
    with runtime.uow.write() as conn:
        result = dissolution.do_dissolve(
            conn, actor=actor, group_id=group_id, gap=timedelta(hours=hours),
            notice=str(form.get("notice") or "") or None,
            new_name=str(form.get("new_name") or "") or None, dry_run=not start,
            capabilities=runtime.capabilities, now=runtime.now())
        group = groups_service.access_group_by_id(conn, actor=actor, group_id=group_id)
    if start:
        return RedirectResponse(f"/groups/{group_id}?saved=1", status_code=303)
    return render(request, "dissolve.html", {"g": group, "result": result, "hours": hours,
                                             "notice": str(form.get("notice") or ""),
                                             "new_name": str(form.get("new_name") or "")})


@router.post("/groups/{group_id}/roles")
@access(Permission.OPERATE)
async def group_role(request: Request, group_id: int, actor: CurrentActor,
                     runtime: RuntimeDep) -> Response:
    """Give a member (by number) a role in the group, or take it away."""
    form = await request.form()
    with runtime.uow.write() as conn:
        group_roles.do_set_role(
            conn, actor=actor, group_id=group_id,
            member_id=member_id_by_number(conn, str(form.get("number") or "").strip()),
            role=str(form.get("role") or ""), remove=form.get("remove") == "1",
            now=runtime.now())
    return RedirectResponse(f"/groups/{group_id}?saved=1#group-roles", status_code=303)
