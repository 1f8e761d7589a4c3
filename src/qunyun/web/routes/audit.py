"""The audit log and staff account pages (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from qunyun.domain.staff import Role
from qunyun.services import audit as audit_service
from qunyun.services import users
from qunyun.services.errors import ServiceError
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, render

router = APIRouter(include_in_schema=False)


@router.get("/audit")
def audit_page(request: Request, actor: CurrentActor, conn: ReadConn, page: int = 1) -> Response:
    page = max(1, page)
    rows = audit_service.list_audit(conn, actor=actor, limit=100, offset=(page - 1) * 100)
    return render(request, "audit.html", {"rows": rows, "page": page})


@router.get("/users")
def users_page(request: Request, actor: CurrentActor, conn: ReadConn) -> Response:
    return render(request, "users.html", {"users": users.list_users(conn, actor=actor),
                                          "roles": list(Role),
                                          "created": None, "error": None})


@router.post("/users")
def users_create(request: Request, actor: CurrentActor, runtime: RuntimeDep,
                 username: str = Form(""), password: str = Form(""), role: str = Form("viewer"),
                 language: str = Form("zh-CN")) -> Response:
    created: str | None = None
    error: str | None = None
    try:
        with runtime.uow.write() as conn:
            created = users.do_create_user(conn, actor=actor, username=username.strip(),
                                           password=password, role=role,
                                           language=language).username
    except ServiceError as exc:
        error = str(exc)
    with runtime.uow.read() as conn:
        rows = users.list_users(conn, actor=actor)
    return render(request, "users.html", {"users": rows, "roles": list(Role),
                                          "created": created, "error": error},
                  status_code=422 if error else 200)
