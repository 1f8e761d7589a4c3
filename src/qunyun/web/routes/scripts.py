"""The script library (话术) pages: list, edit with versions, preview. Services do the work."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.domain.content import (
    BUILTIN_VARIABLES,
    ScriptKind,
)
from qunyun.domain.staff import Permission
from qunyun.services import scripts
from qunyun.services.groups import list_groups
from qunyun.services.members import member_id_by_number
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, render
from qunyun.web.forms import form_attachments

router = APIRouter(include_in_schema=False)


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
            "attachments": form_attachments(form)})
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
