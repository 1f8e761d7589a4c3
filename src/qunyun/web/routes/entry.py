"""The entry gate's page: join requests waiting for a person, with the applicants' answers,
share screenshots and history, and the buttons to let them in, turn them down or ask them
something; an application received elsewhere recorded; a member's invitation code made.
And the applicant's own upload link for a share screenshot (public, by its token)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.domain.staff import Permission
from qunyun.services import entry
from qunyun.services.groups import list_groups
from qunyun.services.members import member_id_by_number
from qunyun.web.deps import (
    PUBLIC,
    CurrentActor,
    ReadConn,
    RuntimeDep,
    access,
    render,
)
from qunyun.web.forms import form_picture
from qunyun.web.uploads import upload_page, upload_post

router = APIRouter(include_in_schema=False)


@router.get("/entry")
@access(Permission.VIEW)
def entry_page(request: Request, actor: CurrentActor, conn: ReadConn, status: str = "open",
               group: str = "", done: str = "", link: str = "") -> Response:
    group_id = int(group) if group.strip().isdigit() and len(group) < 19 else None
    status = status if status in ("open", "closed", "all") else "open"
    return render(request, "entry.html", {
        "rows": entry.list_requests(conn, actor=actor, status=status, group_id=group_id),
        "status": status, "group_id": group_id, "groups": list_groups(conn, actor=actor),
        "notice": done if done in ("approved", "declined", "asked", "applied", "invited",
                                   "attached") else "",
        "link": link[:500] if done == "invited" else ""})


@router.post("/entry/apply")
@access(Permission.OPERATE)
def entry_apply(actor: CurrentActor, runtime: RuntimeDep, group_id: int = Form(..., ge=1),
                member: str = Form(..., max_length=20), note: str = Form("", max_length=1000)
                ) -> Response:
    with runtime.uow.write() as conn:
        row = entry.do_apply(conn, actor=actor, group_id=group_id,
                             config=runtime.ingest_config,
                             member_id=member_id_by_number(conn, member), note=note,
                             now=runtime.now())
    return _back(int(row["id"]), "applied")


@router.post("/entry/invite")
@access(Permission.OPERATE)
def entry_invite(actor: CurrentActor, runtime: RuntimeDep, group_id: int = Form(..., ge=1),
                 member: str = Form(..., max_length=20),
                 account: str = Form(..., min_length=1, max_length=64)) -> Response:
    with runtime.uow.read() as conn:
        member_id = member_id_by_number(conn, member)
    made = entry.do_invitation_code(runtime.uow, actor=actor, adapter_for=runtime.adapter,
                                    account=account, group_id=group_id, member_id=member_id)
    return RedirectResponse(f"/entry?done=invited&link={quote(made['link'], safe='')}"
                            "#entry-notice", status_code=303)


@router.post("/entry/{request_id}/screenshot")
@access(Permission.OPERATE)
async def entry_attach(request: Request, request_id: int, actor: CurrentActor,
                       runtime: RuntimeDep) -> Response:
    data = await form_picture(request)
    with runtime.uow.write() as conn:
        entry.do_attach(conn, actor=actor, request_id=request_id, data=data,
                        folder=runtime.settings.pictures_dir, now=runtime.now())
    return _back(request_id, "attached")


@router.get("/entry/s/{token}")
@access(PUBLIC)
def upload_page_(request: Request, token: str, runtime: RuntimeDep) -> Response:
    """The applicant's upload link for the screenshot of their share."""
    return upload_page(request, runtime, template="entry_share.html", token=token,
                       read=lambda conn, t: entry.share_form(conn, token=t))


@router.post("/entry/s/{token}")
@access(PUBLIC)
async def upload(request: Request, token: str, runtime: RuntimeDep) -> Response:
    return await upload_post(
        request, runtime, template="entry_share.html", token=token,
        read=lambda conn, t: entry.share_form(conn, token=t),
        store=lambda conn, t, data, where: entry.do_upload(
            conn, token=t, data=data, folder=where, now=runtime.now()))


def _back(request_id: int, done: str) -> Response:
    return RedirectResponse(f"/entry?done={done}#request-{request_id}", status_code=303)


@router.post("/entry/{request_id}/approve")
@access(Permission.OPERATE)
def entry_approve(request_id: int, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    with runtime.uow.write() as conn:
        entry.do_decide(conn, actor=actor, request_id=request_id, approve=True,
                        capabilities=runtime.capabilities, now=runtime.now())
    return _back(request_id, "approved")


@router.post("/entry/{request_id}/decline")
@access(Permission.OPERATE)
def entry_decline(request_id: int, actor: CurrentActor, runtime: RuntimeDep,
                  reason: str = Form("", max_length=500), tell: str = Form("")) -> Response:
    with runtime.uow.write() as conn:
        entry.do_decide(conn, actor=actor, request_id=request_id, approve=False,
                        reason=reason, tell=bool(tell), capabilities=runtime.capabilities,
                        now=runtime.now())
    return _back(request_id, "declined")


@router.post("/entry/{request_id}/ask")
@access(Permission.OPERATE)
def entry_ask(request_id: int, actor: CurrentActor, runtime: RuntimeDep,
              text: str = Form(..., max_length=1000)) -> Response:
    with runtime.uow.write() as conn:
        entry.do_ask(conn, actor=actor, request_id=request_id, text=text,
                     capabilities=runtime.capabilities, now=runtime.now())
    return _back(request_id, "asked")
