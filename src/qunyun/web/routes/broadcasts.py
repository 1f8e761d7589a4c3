"""The broadcast pages: the composer with recipient count and cap warnings, and the delivery
log. Services do the work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.domain.staff import Permission
from qunyun.services import broadcasts, pushes, scripts
from qunyun.services.errors import InvalidInput, in_words
from qunyun.services.groups import list_groups
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, language, render
from qunyun.web.forms import form_attachments, form_int, form_target, form_values, local_time
from qunyun.web.listing import ListingQuery

router = APIRouter(include_in_schema=False)


def _broadcast_args(form: Any, runtime: Any, *, preview: bool = False) -> dict[str, Any]:
    script = str(form.get("script_id") or "")
    return {"target": form_target(form),
            "script_id": form_int(script, "script_id") if script else None,
            "text": str(form.get("text") or "") if not script else None,
            "attachments": form_attachments(form) if not script else [],
            "variables": form_values(str(form.get("variables", ""))),
            "send_at": _send_at(form, runtime, required=not preview),
            "pin": bool(form.get("pin"))}


def _send_at(form: Any, runtime: Any, *, required: bool = True) -> datetime | None:
    """The time typed (明天 20:00, 12/04 20:00…) or picked on the calendar; an empty time
    sends at once only when "send now" is ticked — never by leaving the field empty."""
    typed = str(form.get("send_at") or "").strip() or str(form.get("send_at_pick") or "")
    if typed:
        return local_time(typed, runtime, "send_at")
    if form.get("send_now") or not required:  # the preview shows "now" and asks for a time
        return None
    raise InvalidInput("send_at: choose a time, or tick “send now”")


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
                                           **_broadcast_args(form, runtime, preview=True))
        out["needs_time"] = not (form.get("send_at") or form.get("send_at_pick")
                                 or form.get("send_now"))
        error = ""
    except InvalidInput as exc:
        out, error = {}, in_words(exc, language(request))
    return render(request, "_broadcast_preview.html", {"p": out, "error": error})


@router.post("/content/broadcasts")
@access(Permission.OPERATE)
async def broadcasts_create(request: Request, actor: CurrentActor,
                            runtime: RuntimeDep) -> Response:
    form = await request.form()
    with runtime.uow.write() as conn:
        row = broadcasts.do_create_broadcast(conn, actor=actor, name=str(form.get("name", "")),
                                             clock=runtime.clock(),
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
                    listing: ListingQuery, broadcast: int | None = None,
                    playbook: int | None = None) -> Response:
    sent = pushes.page_deliveries(conn, actor=actor, broadcast_id=broadcast,
                                  playbook_id=playbook, listing=listing)
    return render(request, "deliveries.html", {
        "rows": sent.rows, "p": sent, "broadcast": broadcast, "playbook": playbook})
