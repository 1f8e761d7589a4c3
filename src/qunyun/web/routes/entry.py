"""The entry gate's page: join requests waiting for a person, with the applicants' answers
and history, and the buttons to let them in, turn them down or ask them something."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.domain.staff import Permission
from qunyun.services import entry
from qunyun.services.groups import list_groups
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, render

router = APIRouter(include_in_schema=False)


@router.get("/entry")
@access(Permission.VIEW)
def entry_page(request: Request, actor: CurrentActor, conn: ReadConn, status: str = "open",
               group: str = "", done: str = "") -> Response:
    group_id = int(group) if group.strip().isdigit() else None
    status = status if status in ("open", "closed", "all") else "open"
    return render(request, "entry.html", {
        "rows": entry.list_requests(conn, actor=actor, status=status, group_id=group_id),
        "status": status, "group_id": group_id, "groups": list_groups(conn, actor=actor),
        "notice": done if done in ("approved", "declined", "asked") else ""})


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
