"""Join requests over the API: the entry gate's pending queue (list, one request, approve,
decline, ask). How each group's gate decides is the ``entry`` automation section."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, Response, UploadFile
from pydantic import BaseModel, Field

from qunyun.domain.staff import Permission
from qunyun.services import entry
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access

router = APIRouter(prefix="/api/v1", tags=["entry"])


class Decline(BaseModel):
    reason: str = Field("", max_length=500)
    tell: bool = True  # the group's decline text, with the reason, goes to the applicant


class Ask(BaseModel):
    text: str = Field(min_length=1, max_length=1000)


class Apply(BaseModel):
    """An application that reached staff elsewhere: a member (with an account on the
    group's platform) or a platform user id."""

    group_id: int = Field(ge=1, le=2**62)
    member_id: int | None = Field(None, ge=1, le=2**62)
    user: str = Field("", max_length=255)
    name: str = Field("", max_length=64)
    note: str = Field("", max_length=1000)
    channel: str = Field("", max_length=128)


class Invitation(BaseModel):
    group_id: int = Field(ge=1, le=2**62)
    member_id: int = Field(ge=1, le=2**62)
    account: str = Field(min_length=1, max_length=64)


@router.get("/entry/requests")
@access(Permission.VIEW)
def requests(actor: CurrentActor, conn: ReadConn, status: str = "open",
             group_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Requests newest first (``open``, ``closed``, ``all`` or one status) with the
    applicant's answers and history (blacklisted, groups, activities)."""
    return entry.list_requests(conn, actor=actor, status=status, group_id=group_id,
                               limit=limit)


@router.post("/entry/requests", status_code=201)
@access(Permission.OPERATE)
def apply(body: Apply, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    """Record an application (WeCom holds no join request): the group's gate decides it
    at once — the answer says how (``status``) and what was queued (``outbox_ids``)."""
    with runtime.uow.write() as conn:
        return entry.do_apply(conn, actor=actor, group_id=body.group_id,
                              config=runtime.ingest_config, member_id=body.member_id,
                              user=body.user, name=body.name, note=body.note,
                              channel=body.channel, now=runtime.now())


@router.post("/entry/invitations", status_code=201)
@access(Permission.OPERATE)
def invitation(body: Invitation, actor: CurrentActor, runtime: RuntimeDep
               ) -> dict[str, Any]:
    """A member's personal invitation code to their group (``code``, ``link``): whoever
    comes through it passes an invitation-only gate. Made once."""
    return entry.do_invitation_code(runtime.uow, actor=actor, adapter_for=runtime.adapter,
                                    account=body.account, group_id=body.group_id,
                                    member_id=body.member_id)


@router.post("/entry/requests/{request_id}/screenshot")
@access(Permission.OPERATE)
async def attach_screenshot(request_id: int, actor: CurrentActor, runtime: RuntimeDep,
                            screenshot: UploadFile = File(...)) -> dict[str, Any]:
    """A share screenshot the applicant sent staff privately (multipart, PNG or JPEG)."""
    data = await screenshot.read()
    with runtime.uow.write() as conn:
        return entry.do_attach(conn, actor=actor, request_id=request_id, data=data,
                               folder=runtime.settings.pictures_dir,
                               now=runtime.now())


@router.get("/entry/requests/{request_id}/screenshot.png")
@access(Permission.VIEW)
def screenshot(request_id: int, actor: CurrentActor, conn: ReadConn,
               runtime: RuntimeDep) -> Response:
    png = entry.screenshot(conn, actor=actor, request_id=request_id,
                           folder=runtime.settings.pictures_dir)
    return Response(png, media_type="image/png", headers={"cache-control": "private"})


@router.get("/entry/requests/{request_id}")
@access(Permission.VIEW)
def request(request_id: int, actor: CurrentActor, conn: ReadConn) -> dict[str, Any]:
    return entry.access_request_by_id(conn, actor=actor, request_id=request_id)


@router.post("/entry/requests/{request_id}/approve")
@access(Permission.OPERATE)
def approve(request_id: int, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    """Let the applicant in (a 409 when the request was already decided)."""
    with runtime.uow.write() as conn:
        return entry.do_decide(conn, actor=actor, request_id=request_id, approve=True,
                               capabilities=runtime.capabilities, now=runtime.now())


@router.post("/entry/requests/{request_id}/decline")
@access(Permission.OPERATE)
def decline(request_id: int, body: Decline, actor: CurrentActor,
            runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        return entry.do_decide(conn, actor=actor, request_id=request_id, approve=False,
                               reason=body.reason, tell=body.tell,
                               capabilities=runtime.capabilities, now=runtime.now())


@router.post("/entry/requests/{request_id}/ask")
@access(Permission.OPERATE)
def ask(request_id: int, body: Ask, actor: CurrentActor, runtime: RuntimeDep
        ) -> dict[str, Any]:
    """Ask the applicant privately; their reply is added to the request's answers."""
    with runtime.uow.write() as conn:
        return entry.do_ask(conn, actor=actor, request_id=request_id, text=body.text,
                            capabilities=runtime.capabilities, now=runtime.now())
