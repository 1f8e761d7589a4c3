"""Staff accounts over the API: admins change roles, disable accounts and set passwords;
everyone changes their own password, ends their own sessions and manages their tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from qunyun.domain.staff import Permission
from qunyun.services import users
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access
from qunyun.web.schemas import (
    Me,
    PasswordChange,
    SessionPublic,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    UserCreate,
    UserPublic,
    UserUpdate,
)

router = APIRouter(prefix="/api/v1", tags=["users"])


@router.get("/me", response_model=Me)
@access(Permission.VIEW)
def me(actor: CurrentActor) -> Me:
    return Me(id=actor.id, username=actor.username, role=actor.role.value,
              language=actor.language)


@router.get("/users", response_model=list[UserPublic])
@access(Permission.MANAGE_USERS)
def api_users(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return users.list_users(conn, actor=actor)


@router.post("/users", response_model=UserPublic, status_code=201)
@access(Permission.MANAGE_USERS)
def api_user_create(body: UserCreate, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.uow.write() as conn:
        created = users.do_create_user(conn, actor=actor, username=body.username,
                                       password=body.password, role=body.role,
                                       language=body.language, display_name=body.display_name)
    with runtime.uow.read() as conn:
        return next(u for u in users.list_users(conn, actor=actor) if u["id"] == created.id)


@router.patch("/users/{username}", response_model=UserPublic)
@access(Permission.MANAGE_USERS)
def api_user_update(username: str, body: UserUpdate, actor: CurrentActor,
                    runtime: RuntimeDep) -> dict[str, Any]:
    """Change a role, disable (``active: false``) or enable an account, or set its password;
    every session of that account ends."""
    with runtime.uow.write() as conn:
        return users.do_update_user(conn, actor=actor, username=username, role=body.role,
                                    active=body.active, password=body.password)


@router.post("/me/password", status_code=204)
@access(Permission.VIEW)
def api_change_password(body: PasswordChange, actor: CurrentActor,
                        runtime: RuntimeDep) -> None:
    """Change one's own password; one's other sessions end."""
    with runtime.uow.write() as conn:
        users.do_change_password(conn, actor=actor, current=body.current_password,
                                 new=body.new_password)


@router.get("/me/sessions", response_model=list[SessionPublic])
@access(Permission.VIEW)
def api_sessions(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    return users.list_sessions(conn, actor=actor)


@router.delete("/me/sessions/{session_id}", status_code=204)
@access(Permission.VIEW)
def api_end_session(session_id: int, actor: CurrentActor, runtime: RuntimeDep) -> None:
    with runtime.uow.write() as conn:
        users.do_end_session(conn, actor=actor, session_id=session_id)


@router.get("/tokens", response_model=list[TokenPublic])
@access(Permission.VIEW)
def api_tokens(actor: CurrentActor, conn: ReadConn,
               username: str | None = None) -> list[dict[str, Any]]:
    """One's own tokens; an admin sees everyone's (or one account's with ``username``)."""
    return users.list_tokens(conn, actor=actor, username=username)


@router.post("/tokens", response_model=TokenCreated, status_code=201)
@access(Permission.VIEW)
def api_token_create(body: TokenCreate, actor: CurrentActor,
                     runtime: RuntimeDep) -> TokenCreated:
    """A bearer token (shown once) that expires after ``days``."""
    username = body.username or actor.username
    with runtime.uow.write() as conn:
        token = users.do_create_api_token(conn, actor=actor, username=username,
                                          label=body.label, days=body.days)
    return TokenCreated(username=username, token=token, days=body.days)


@router.delete("/tokens/{token_id}", status_code=204)
@access(Permission.VIEW)
def api_token_revoke(token_id: int, actor: CurrentActor, runtime: RuntimeDep) -> None:
    with runtime.uow.write() as conn:
        users.do_revoke_token(conn, actor=actor, token_id=token_id)
