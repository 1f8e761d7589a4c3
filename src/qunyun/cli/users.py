"""``qunyun users …``: staff accounts, roles, passwords and API tokens."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from qunyun.cli.common import (
    JsonOpt,
    console,
    emit_json,
    fail,
    runtime,
    say,
)
from qunyun.i18n import Term

users_app = typer.Typer(help="Staff accounts", no_args_is_help=True)


# --- users ------------------------------------------------------------------------------

@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[str, typer.Option(help="admin, operator, sales or viewer")] = "operator",
    password: Annotated[str | None, typer.Option(
        help="Password; omit to be prompted, or pass '-' to read it from stdin")] = None,
    language: Annotated[str, typer.Option(help="zh-CN or en")] = "zh-CN",
    as_json: JsonOpt = False,
) -> None:
    """Create a staff account."""
    from qunyun.services import users
    from qunyun.services.users import SYSTEM

    if password == "-":
        password = sys.stdin.readline().rstrip("\n")
    elif password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with runtime() as rt, rt.uow.write() as conn:
        actor = users.do_create_user(conn, actor=SYSTEM, username=username, password=password,
                                     role=role, language=language)
    if as_json:
        emit_json({"id": actor.id, "username": actor.username, "role": actor.role.value})
    else:
        console.print(say("created {username} ({role})", username=actor.username,
                          role=Term("role", actor.role.value)))


@users_app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """List staff accounts."""
    from qunyun.services import users
    from qunyun.services.users import SYSTEM

    with runtime() as rt, rt.uow.read() as conn:
        rows = users.list_users(conn, actor=SYSTEM)
    if as_json:
        emit_json(rows)
        return
    table = Table("id", say("username"), say("role"), say("language"), say("last login"))
    for r in rows:
        table.add_row(str(r["id"]), r["username"], r["role"], r["language"],
                      str(r["last_login_at"] or ""))
    console.print(table)


@users_app.command("set")
def users_set(
    username: str,
    role: Annotated[str | None, typer.Option(help="admin, operator, sales or viewer")] = None,
    disable: Annotated[bool, typer.Option("--disable", help="Disable the account")] = False,
    enable: Annotated[bool, typer.Option("--enable", help="Enable it again")] = False,
    password: Annotated[str | None, typer.Option(
        help="New password: '-' reads it from stdin, 'prompt' asks for it")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change an account's role, disable or enable it, or set its password (every session
    of the account ends)."""
    from qunyun.services import users
    from qunyun.services.users import SYSTEM

    if disable and enable:
        fail(say("--disable and --enable: choose one"))
    if password == "-":
        password = sys.stdin.readline().rstrip("\n")
    elif password == "prompt":
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with runtime() as rt, rt.uow.write() as conn:
        row = users.do_update_user(conn, actor=SYSTEM, username=username, role=role,
                                   active=False if disable else True if enable else None,
                                   password=password)
    if as_json:
        emit_json(row)
    else:
        state = say("active") if row["active"] else say("disabled")
        console.print(f"{row['username']}: {say('role.' + row['role'])}, {state}")


@users_app.command("token")
def users_token(username: str, label: str = "",
                days: Annotated[int, typer.Option(help="Days until it expires (1–366)")] = 90,
                as_json: JsonOpt = False) -> None:
    """Create an API bearer token for a staff account (shown once; expires after --days)."""
    from qunyun.services import users
    from qunyun.services.users import SYSTEM

    with runtime() as rt, rt.uow.write() as conn:
        token = users.do_create_api_token(conn, actor=SYSTEM, username=username, label=label,
                                          days=days)
    if as_json:
        emit_json({"username": username, "token": token, "days": days})
    else:
        console.print(token)


@users_app.command("tokens")
def users_tokens(username: Annotated[str | None, typer.Argument()] = None,
                 as_json: JsonOpt = False) -> None:
    """List API tokens (all accounts, or one)."""
    from qunyun.services import users
    from qunyun.services.users import SYSTEM

    with runtime() as rt, rt.uow.read() as conn:
        rows = users.list_tokens(conn, actor=SYSTEM, username=username)
    if as_json:
        emit_json(rows)
        return
    table = Table("id", say("username"), say("label"), say("created"), say("expires"), say("state"))
    for r in rows:
        state = (say("live") if r["live"] else say("revoked") if r["revoked_at"]
                 else say("expired"))
        table.add_row(str(r["id"]), r["username"], r["label"], str(r["created_at"]),
                      str(r["expires_at"]), state)
    console.print(table)


@users_app.command("revoke-token")
def users_revoke_token(token_id: int, as_json: JsonOpt = False) -> None:
    """Revoke an API token by its id (see `users tokens`)."""
    from qunyun.services import users
    from qunyun.services.users import SYSTEM

    with runtime() as rt, rt.uow.write() as conn:
        users.do_revoke_token(conn, actor=SYSTEM, token_id=token_id)
    if as_json:
        emit_json({"revoked": token_id})
    else:
        console.print(say("token {token_id} revoked", token_id=token_id))
