"""Member search and profile pages."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from qunyun.services import members as members_service
from qunyun.web.deps import CurrentActor, ReadConn, render

router = APIRouter(include_in_schema=False)


@router.get("/members")
def members_page(request: Request, actor: CurrentActor, conn: ReadConn, q: str = "",
                 page: int = 1) -> Response:
    page = max(1, page)
    rows = members_service.list_members(conn, actor=actor, query=q.strip(), limit=50,
                                        offset=(page - 1) * 50)
    return render(request, "members.html", {"members": rows, "q": q, "page": page})


@router.get("/members/{member_id}")
def member_page(request: Request, member_id: int, actor: CurrentActor,
                conn: ReadConn) -> Response:
    member = members_service.access_member_by_id(conn, actor=actor, member_id=member_id)
    return render(request, "member.html", {"m": member})
