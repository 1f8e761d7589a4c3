"""The playbook pages: the editor with its steps and groups, and the timeline (dry run).
Services do the work."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.domain.groups import GroupState
from qunyun.domain.staff import Permission
from qunyun.services import playbooks, pushes, scripts, timeline
from qunyun.services.errors import InvalidInput
from qunyun.services.groups import list_groups
from qunyun.services.members import member_id_by_number
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, render
from qunyun.web.forms import form_ids, form_int, form_target, form_values, local_time

router = APIRouter(include_in_schema=False)


@router.get("/content/playbooks")
@access(Permission.VIEW)
def playbooks_page(request: Request, actor: CurrentActor, conn: ReadConn) -> Response:
    return render(request, "playbooks.html", {
        "playbooks": playbooks.list_playbooks(conn, actor=actor),
        "groups": list_groups(conn, actor=actor), "states": [s.value for s in GroupState]})


@router.post("/content/playbooks")
@access(Permission.OPERATE)
async def playbooks_create(request: Request, actor: CurrentActor,
                           runtime: RuntimeDep) -> Response:
    form = await request.form()
    with runtime.uow.write() as conn:
        pb = playbooks.do_create_playbook(
            conn, actor=actor, name=str(form.get("name", "")),
            description=str(form.get("description", "")),
            campaign_start=local_time(str(form.get("campaign_start", "")), runtime,
                                       "campaign_start"),
            variables=form_values(str(form.get("variables", ""))),
            group_ids=form_ids(form), on_state=str(form.get("on_state") or ""))
    return RedirectResponse(f"/content/playbooks/{pb['id']}", status_code=303)


@router.get("/content/playbooks/{playbook_id}")
@access(Permission.VIEW)
def playbook_page(playbook_id: int, request: Request, actor: CurrentActor, conn: ReadConn,
                  runtime: RuntimeDep, start: date | None = None, days: int = 7) -> Response:
    pb = playbooks.get_playbook(conn, actor=actor, playbook_id=playbook_id)
    preview = playbooks.preview_playbook(conn, actor=actor, playbook_id=playbook_id,
                                         start=start, days=days, clock=runtime.clock())
    by_day: dict[str, list[dict[str, Any]]] = {}
    for row in preview["rows"]:
        by_day.setdefault(row["due"][:10], []).append(row)
    return render(request, "playbook.html", {
        "pb": pb, "preview": preview, "by_day": by_day, "start": preview["from"], "days": days,
        "scripts": scripts.list_scripts(conn, actor=actor),
        "groups": list_groups(conn, actor=actor),
        "attached": {g["id"] for g in pb["groups"]},
        "deliveries": pushes.list_deliveries(conn, actor=actor, playbook_id=playbook_id,
                                             limit=20)})


@router.get("/content/timeline")
@access(Permission.VIEW)
def timeline_page(request: Request, actor: CurrentActor, conn: ReadConn, runtime: RuntimeDep,
                  group: int | None = None, member: int | None = None,
                  start: date | None = None, days: int = 7) -> Response:
    """Everything a group (or a member, by number) will receive, all playbooks and
    broadcasts together, placed under the caps and quiet hours."""
    all_groups = list_groups(conn, actor=actor)
    out = None
    member_id = None
    if member is not None:
        member_id = member_id_by_number(conn, str(member))
    elif group is None and all_groups:
        group = all_groups[0]["id"]
    if group is not None or member_id is not None:
        out = timeline.preview_timeline(conn, actor=actor, group_id=None if member_id else group,
                                        member_id=member_id, start=start, days=days,
                                        clock=runtime.clock())
    by_day: dict[str, list[dict[str, Any]]] = {}
    for row in out["rows"] if out else []:
        by_day.setdefault(row["due"][:10], []).append(row)
    return render(request, "timeline.html", {
        "out": out, "by_day": by_day, "groups": all_groups, "group_id": group,
        "member": member, "days": days, "start": out["from"] if out else ""})


@router.post("/content/playbooks/{playbook_id}/{action}")
@access(Permission.OPERATE)
async def playbook_action(playbook_id: int, action: str, request: Request, actor: CurrentActor,
                          runtime: RuntimeDep) -> Response:
    form = await request.form()
    tz = runtime.settings.tz
    with runtime.uow.write() as conn:
        if action == "status":
            playbooks.do_update_playbook(conn, actor=actor, playbook_id=playbook_id,
                                         changes={"status": str(form.get("status"))}, tz=tz)
        elif action == "shift":
            to = local_time(str(form.get("to", "")), runtime, "to")
            hours = str(form.get("hours") or "").strip()
            if to is None and not hours:
                raise InvalidInput("shift: give a new start or a number of hours")
            try:
                by = timedelta(hours=float(hours)) if hours and to is None else None
            except ValueError:
                raise InvalidInput("hours: a number") from None
            playbooks.do_shift_campaign(conn, actor=actor, playbook_id=playbook_id, by=by,
                                        to=to, tz=tz)
        elif action == "groups":
            playbooks.do_set_groups(conn, actor=actor, playbook_id=playbook_id,
                                    group_ids=form_ids(form))
        elif action == "steps":
            quiet = str(form.get("max_messages_last_hour") or "").strip()
            playbooks.do_add_step(conn, actor=actor, playbook_id=playbook_id, tz=tz, values={
                "at": str(form.get("at", "")),
                "script_id": form_int(form.get("script_id"), "script_id"),
                "name": str(form.get("name", "")), "target": form_target(form),
                "max_messages_last_hour": quiet or None})
        elif action == "skip":
            playbooks.do_skip_step(conn, actor=actor, playbook_id=playbook_id,
                                   step_id=form_int(form.get("step_id"), "step_id"),
                                   skipped=form.get("skipped") != "0",
                                   once=form.get("once") == "1", tz=tz)
        elif action == "delete-step":
            playbooks.do_delete_step(conn, actor=actor, playbook_id=playbook_id,
                                     step_id=form_int(form.get("step_id"), "step_id"))
        else:
            raise InvalidInput("unknown action {action!r}", action=action)
    return RedirectResponse(f"/content/playbooks/{playbook_id}", status_code=303)
