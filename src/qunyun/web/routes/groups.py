"""Group list, group detail and group settings pages."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.domain.staff import Permission
from qunyun.services import groups as groups_service
from qunyun.services.groups import EDITABLE
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, render
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
    return render(request, "group.html", {"g": group, "p": people, "saved": saved})


@router.post("/groups/{group_id}")
@access(Permission.OPERATE)
async def group_save(request: Request, group_id: int, actor: CurrentActor,
                     runtime: RuntimeDep) -> Response:
    form = await request.form()
    changes = {k: str(v) for k, v in form.items() if k in EDITABLE}
    with runtime.uow.write() as conn:
        groups_service.do_update_group(conn, actor=actor, group_id=group_id, changes=changes,
                                       now=runtime.now())
    return RedirectResponse(f"/groups/{group_id}?saved=1", status_code=303)
