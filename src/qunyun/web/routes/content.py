"""Content pages: script library, playbook editor with a timeline (dry run), broadcast
composer with recipient count and cap warnings, delivery log. Services do the work."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.domain.content import (
    BUILTIN_VARIABLES,
    ContentError,
    ScriptKind,
    parse_assignments,
    parse_local_time,
)
from qunyun.domain.staff import Permission
from qunyun.services import broadcasts, playbooks, pushes, scripts, timeline
from qunyun.services.errors import InvalidInput
from qunyun.services.groups import list_groups
from qunyun.services.members import member_id_by_number
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, render

router = APIRouter(include_in_schema=False)


def _form_target(form: Any) -> dict[str, Any] | None:
    """The target a form names with ``target_kind`` and ``target_value`` (or the ticked
    ``group_ids`` checkboxes)."""
    kind = str(form.get("target_kind") or "")
    if not kind or kind == "playbook":
        return None
    if kind == "groups":
        return {"groups": _ids(form) or str(form.get("target_value") or "")}
    if kind == "all":
        return {"all": True}
    return {kind: str(form.get("target_value") or "")}


def _int(value: Any, field: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise InvalidInput(f"{field}: a whole number") from None


def _ids(form: Any) -> list[int]:
    return [_int(g, "group_ids") for g in form.getlist("group_ids")]


def _local_time(text: str, runtime: Any, field: str) -> datetime | None:
    try:
        return parse_local_time(text, runtime.settings.tz, field)
    except ContentError as exc:
        raise InvalidInput(str(exc)) from None


def _values(text: str) -> dict[str, str]:
    try:
        return parse_assignments(text.splitlines())
    except ContentError as exc:
        raise InvalidInput(str(exc)) from None


def _attachments(form: Any) -> list[dict[str, str]]:
    kind = str(form.get("attach_type") or "")
    if not kind:
        return []
    return [{"type": kind, "url": str(form.get("attach_url") or ""),
             "title": str(form.get("attach_title") or ""),
             "appid": str(form.get("attach_appid") or ""),
             "page": str(form.get("attach_page") or "")}]


# --- scripts ------------------------------------------------------------------------------

@router.get("/content/scripts")
@access(Permission.VIEW)
def scripts_page(request: Request, actor: CurrentActor, conn: ReadConn,
                 kind: str | None = None) -> Response:
    return render(request, "scripts.html", {
        "scripts": scripts.list_scripts(conn, actor=actor, kind=kind or None), "kind": kind,
        "kinds": list(ScriptKind), "builtin": BUILTIN_VARIABLES})


@router.post("/content/scripts")
@access(Permission.OPERATE)
async def scripts_create(request: Request, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    form = await request.form()
    with runtime.uow.write() as conn:
        row = scripts.do_create_script(conn, actor=actor, values={
            "name": form.get("name", ""), "kind": form.get("kind", ""),
            "body": form.get("body", ""),
            "variables": str(form.get("variables", "")).replace("，", ",").split(","),
            "attachments": _attachments(form)})
    return RedirectResponse(f"/content/scripts/{row['id']}", status_code=303)


@router.get("/content/scripts/{script_id}")
@access(Permission.VIEW)
def script_page(script_id: int, request: Request, actor: CurrentActor, conn: ReadConn,
                runtime: RuntimeDep, group_id: int | None = None,
                member: int | None = None) -> Response:
    """The script with a preview for a chosen group and member (by member number)."""
    member_id = member_id_by_number(conn, member) if member else None
    script = scripts.get_script(conn, actor=actor, script_id=script_id)
    return render(request, "script.html", {
        "s": script, "kinds": list(ScriptKind), "builtin": BUILTIN_VARIABLES,
        "history": scripts.script_history(conn, actor=actor, script_id=script_id),
        "groups": list_groups(conn, actor=actor), "group_id": group_id, "member": member,
        "preview": scripts.preview_script(conn, actor=actor, script_id=script_id,
                                          group_id=group_id, member_id=member_id,
                                          tz=runtime.settings.tz)})


@router.post("/content/scripts/{script_id}")
@access(Permission.OPERATE)
async def script_save(script_id: int, request: Request, actor: CurrentActor,
                      runtime: RuntimeDep) -> Response:
    form = await request.form()
    with runtime.uow.write() as conn:
        if form.get("archive"):
            scripts.do_archive_script(conn, actor=actor, script_id=script_id,
                                      archived=form.get("archive") == "1")
        else:
            scripts.do_update_script(conn, actor=actor, script_id=script_id, values={
                "name": form.get("name", ""), "kind": form.get("kind", ""),
                "body": form.get("body", ""),
                "variables": str(form.get("variables", "")).replace("，", ",").split(",")},
                note=str(form.get("note", "")))
    return RedirectResponse(f"/content/scripts/{script_id}", status_code=303)


# --- playbooks ----------------------------------------------------------------------------

@router.get("/content/playbooks")
@access(Permission.VIEW)
def playbooks_page(request: Request, actor: CurrentActor, conn: ReadConn) -> Response:
    return render(request, "playbooks.html", {
        "playbooks": playbooks.list_playbooks(conn, actor=actor),
        "groups": list_groups(conn, actor=actor)})


@router.post("/content/playbooks")
@access(Permission.OPERATE)
async def playbooks_create(request: Request, actor: CurrentActor,
                           runtime: RuntimeDep) -> Response:
    form = await request.form()
    with runtime.uow.write() as conn:
        pb = playbooks.do_create_playbook(
            conn, actor=actor, name=str(form.get("name", "")),
            description=str(form.get("description", "")),
            campaign_start=_local_time(str(form.get("campaign_start", "")), runtime,
                                       "campaign_start"),
            variables=_values(str(form.get("variables", ""))),
            group_ids=_ids(form))
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
            to = _local_time(str(form.get("to", "")), runtime, "to")
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
                                    group_ids=_ids(form))
        elif action == "steps":
            quiet = str(form.get("max_messages_last_hour") or "").strip()
            playbooks.do_add_step(conn, actor=actor, playbook_id=playbook_id, tz=tz, values={
                "at": str(form.get("at", "")),
                "script_id": _int(form.get("script_id"), "script_id"),
                "name": str(form.get("name", "")), "target": _form_target(form),
                "max_messages_last_hour": quiet or None})
        elif action == "skip":
            playbooks.do_skip_step(conn, actor=actor, playbook_id=playbook_id,
                                   step_id=_int(form.get("step_id"), "step_id"),
                                   skipped=form.get("skipped") != "0",
                                   once=form.get("once") == "1", tz=tz)
        elif action == "delete-step":
            playbooks.do_delete_step(conn, actor=actor, playbook_id=playbook_id,
                                     step_id=_int(form.get("step_id"), "step_id"))
        else:
            raise InvalidInput(f"unknown action {action!r}")
    return RedirectResponse(f"/content/playbooks/{playbook_id}", status_code=303)


# --- broadcasts and the delivery log -------------------------------------------------------

def _broadcast_args(form: Any, runtime: Any) -> dict[str, Any]:
    script = str(form.get("script_id") or "")
    return {"target": _form_target(form),
            "script_id": _int(script, "script_id") if script else None,
            "text": str(form.get("text") or "") if not script else None,
            "attachments": _attachments(form) if not script else [],
            "variables": _values(str(form.get("variables", ""))),
            "send_at": _local_time(str(form.get("send_at", "")), runtime, "send_at")}


@router.get("/content/broadcasts")
@access(Permission.VIEW)
def broadcasts_page(request: Request, actor: CurrentActor, conn: ReadConn) -> Response:
    return render(request, "broadcasts.html", {
        "broadcasts": broadcasts.list_broadcasts(conn, actor=actor),
        "scripts": scripts.list_scripts(conn, actor=actor),
        "groups": list_groups(conn, actor=actor)})


@router.post("/content/broadcasts/preview")
@access(Permission.VIEW)
async def broadcasts_preview(request: Request, actor: CurrentActor, conn: ReadConn,
                             runtime: RuntimeDep) -> Response:
    """The composer's live preview (an htmx fragment): recipients, caps, sample texts."""
    form = await request.form()
    try:
        out = broadcasts.preview_broadcast(conn, actor=actor, clock=runtime.clock(),
                                           **_broadcast_args(form, runtime))
        error = ""
    except InvalidInput as exc:
        out, error = {}, str(exc)
    return render(request, "_broadcast_preview.html", {"p": out, "error": error})


@router.post("/content/broadcasts")
@access(Permission.OPERATE)
async def broadcasts_create(request: Request, actor: CurrentActor,
                            runtime: RuntimeDep) -> Response:
    form = await request.form()
    with runtime.uow.write() as conn:
        row = broadcasts.do_create_broadcast(conn, actor=actor, name=str(form.get("name", "")),
                                             **_broadcast_args(form, runtime))
    return RedirectResponse(f"/content/deliveries?broadcast={row['id']}", status_code=303)


@router.post("/content/broadcasts/{broadcast_id}/cancel")
@access(Permission.OPERATE)
def broadcasts_cancel(broadcast_id: int, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    with runtime.uow.write() as conn:
        broadcasts.do_cancel_broadcast(conn, actor=actor, broadcast_id=broadcast_id)
    return RedirectResponse("/content/broadcasts", status_code=303)


@router.get("/content/deliveries")
@access(Permission.VIEW)
def deliveries_page(request: Request, actor: CurrentActor, conn: ReadConn,
                    broadcast: int | None = None, playbook: int | None = None) -> Response:
    return render(request, "deliveries.html", {
        "rows": pushes.list_deliveries(conn, actor=actor, broadcast_id=broadcast,
                                       playbook_id=playbook),
        "broadcast": broadcast, "playbook": playbook})
