"""Staff accounts (admin: create, change role, disable, set a password) and one's own
account (change password, end sessions, API tokens)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.bootstrap import Runtime
from qunyun.domain.staff import Permission, Role
from qunyun.services import users
from qunyun.services.errors import InvalidInput, ServiceError, in_words
from qunyun.services.users import Actor
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, render
from qunyun.web.deps import language as reader_language

router = APIRouter(include_in_schema=False)


def _users_page(request: Request, runtime: Runtime, actor: Actor, *, created: str | None = None,
                flash: str | None = None, error: str | None = None) -> Response:
    with runtime.uow.read() as conn:
        rows = users.list_users(conn, actor=actor)
    return render(request, "users.html", {"users": rows, "roles": list(Role),
                                          "created": created, "flash": flash, "error": error},
                  status_code=422 if error else 200)


@router.get("/users")
@access(Permission.MANAGE_USERS)
def users_page(request: Request, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    return _users_page(request, runtime, actor)


@router.post("/users")
@access(Permission.MANAGE_USERS)
def users_create(request: Request, actor: CurrentActor, runtime: RuntimeDep,
                 username: str = Form(""), password: str = Form(""), role: str = Form("viewer"),
                 language: str = Form("zh-CN")) -> Response:
    try:
        with runtime.uow.write() as conn:
            created = users.do_create_user(conn, actor=actor, username=username.strip(),
                                           password=password, role=role,
                                           language=language).username
    except ServiceError as exc:
        return _users_page(request, runtime, actor, error=in_words(exc, reader_language(request)))
    return _users_page(request, runtime, actor, created=created)


@router.post("/users/{username}")
@access(Permission.MANAGE_USERS)
def users_update(request: Request, username: str, actor: CurrentActor, runtime: RuntimeDep,
                 action: str = Form(...), role: str = Form(""),
                 password: str = Form("")) -> Response:
    """One form per account row: ``action`` is role, disable, enable or password."""
    changes: dict[str, dict[str, Any]] = {
        "role": {"role": role}, "disable": {"active": False}, "enable": {"active": True},
        "password": {"password": password}}
    if action not in changes:
        return _users_page(request, runtime, actor, error=f"action: one of {', '.join(changes)}")
    try:
        with runtime.uow.write() as conn:
            users.do_update_user(conn, actor=actor, username=username, **changes[action])
    except ServiceError as exc:
        return _users_page(request, runtime, actor, error=in_words(exc, reader_language(request)))
    return _users_page(request, runtime, actor, flash=f"users.done.{action}")


# --- one's own account ------------------------------------------------------------------

def _account_page(request: Request, conn: Any, actor: Actor, *, flash: str | None = None,
                  error: str | None = None, token: str | None = None,
                  status_code: int = 200) -> Response:
    return render(request, "account.html", {
        "sessions": users.list_sessions(conn, actor=actor),
        "tokens": users.list_tokens(conn, actor=actor, username=actor.username),
        "flash": flash, "error": error, "new_token": token}, status_code=status_code)


@router.get("/account")
@access(Permission.VIEW)
def account_page(request: Request, actor: CurrentActor, conn: ReadConn) -> Response:
    return _account_page(request, conn, actor)


@router.post("/account/password")
@access(Permission.VIEW)
def account_password(request: Request, actor: CurrentActor, runtime: RuntimeDep,
                     current_password: str = Form(""), new_password: str = Form(""),
                     again: str = Form("")) -> Response:
    error = None
    try:
        if new_password != again:
            raise InvalidInput("again: the two new passwords differ")
        with runtime.uow.write() as conn:
            users.do_change_password(conn, actor=actor, current=current_password,
                                     new=new_password)
    except ServiceError as exc:
        error = in_words(exc, reader_language(request))
    with runtime.uow.read() as conn:
        return _account_page(request, conn, actor, error=error,
                             flash=None if error else "account.password_changed",
                             status_code=422 if error else 200)


@router.post("/account/sessions/{session_id}/end")
@access(Permission.VIEW)
def account_end_session(session_id: int, actor: CurrentActor,
                        runtime: RuntimeDep) -> Response:
    with runtime.uow.write() as conn:
        users.do_end_session(conn, actor=actor, session_id=session_id)
    return RedirectResponse("/account", status_code=303)


@router.post("/account/tokens")
@access(Permission.VIEW)
def account_token(request: Request, actor: CurrentActor, runtime: RuntimeDep,
                  label: str = Form(""), days: int = Form(90)) -> Response:
    try:
        with runtime.uow.write() as conn:
            token = users.do_create_api_token(conn, actor=actor, username=actor.username,
                                              label=label, days=days)
    except ServiceError as exc:
        with runtime.uow.read() as conn:
            return _account_page(request, conn, actor,
                                 error=in_words(exc, reader_language(request)),
                                 status_code=422)
    with runtime.uow.read() as conn:
        return _account_page(request, conn, actor, token=token)


@router.post("/account/tokens/{token_id}/revoke")
@access(Permission.VIEW)
def account_token_revoke(token_id: int, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    with runtime.uow.write() as conn:
        users.do_revoke_token(conn, actor=actor, token_id=token_id)
    return RedirectResponse("/account", status_code=303)
