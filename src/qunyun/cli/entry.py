"""``qunyun entry …``: the pending queue of requests to join groups whose admins approve
newcomers: list them with the applicants' answers and history, let them in, turn them
down, ask them something, and turn down those nobody answered in time. How each group's
gate decides by itself is an automation setting: ``qunyun automation set entry mode=…``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from qunyun.cli.common import (
    AsOpt,
    JsonOpt,
    acting,
    console,
    done,
    emit_json,
    runtime,
    say,
    session,
)
from qunyun.services import entry
from qunyun.services.errors import InvalidInput
from qunyun.services.members import member_id_by_number

entry_app = typer.Typer(help="Join requests waiting for the entry gate or a person",
                        no_args_is_help=True)

StatusOpt = Annotated[str, typer.Option(
    "--status", help="open (waiting), closed, all, or one status: pending, asked, answered, "
                     "approved, declined, expired")]


def _when(row: dict[str, Any], key: str, tz: Any) -> str:
    value = row.get(key)
    return value.astimezone(tz).strftime("%m-%d %H:%M") if value else ""


@entry_app.command("list")
def entry_list(status: StatusOpt = "open",
               group: Annotated[int | None, typer.Option("--group")] = None,
               limit: Annotated[int, typer.Option(min=1, max=1000)] = 200,
               as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Requests, newest first, with the applicant's answers and history."""
    with session(as_user, write=False) as (rt, conn, actor):
        rows = entry.list_requests(conn, actor=actor, status=status, group_id=group,
                                   limit=limit)
        tz = rt.settings.tz
    if as_json:
        emit_json(rows)
        return
    table = Table("#", say("entry.applicant"), say("entry.group"), say("entry.requested_at"),
                  say("entry.status"), say("entry.answers_col"), say("entry.history"))
    for r in rows:
        history = [say("entry.in_groups", n=r["groups_in"]),
                   say("entry.in_activities", n=r["activities"])]
        if r["blacklisted"]:
            history.insert(0, say("entry.blacklisted"))
        table.add_row(str(r["id"]), escape(r["member"]), escape(r["group"]),
                      _when(r, "requested_at", tz), say(f"entry.status.{r['status']}"),
                      escape(" / ".join(a["text"] for a in r["answers"])), "，".join(history))
    console.print(table, highlight=False)


# ``entry queue``: the pending queue by the name operators (and the issue) use for it
entry_app.command("queue", help="The pending queue: requests waiting, with answers and "
                                "history (the same as list)")(entry_list)


@entry_app.command("show")
def entry_show(request_id: int, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """One request, whole."""
    with session(as_user, write=False) as (rt, conn, actor):
        row = entry.access_request_by_id(conn, actor=actor, request_id=request_id)
        tz = rt.settings.tz
    if as_json:
        emit_json(row)
        return
    console.print(f"#{row['id']} {row['member']} → {row['group']}  "
                  f"{say('entry.status.' + row['status'])}", highlight=False, markup=False)
    console.print(f"{say('entry.requested_at')}: {_when(row, 'requested_at', tz)}",
                  highlight=False)
    for a in row["answers"]:
        console.print(f"  · {a['text']}", highlight=False, markup=False)
    if row["reason"]:
        console.print(f"{say('entry.reason')}: {row['reason']}", highlight=False,
                      markup=False)
    if row["screenshot"]:
        console.print(say("entry.has_screenshot"), highlight=False, markup=False)


@entry_app.command("apply")
def entry_apply(group: int,
                member: Annotated[str | None, typer.Option(
                    "--member", help="The applicant's member number")] = None,
                user: Annotated[str, typer.Option(
                    "--user", help="Or their user id on the group's platform")] = "",
                name: Annotated[str, typer.Option("--name")] = "",
                note: Annotated[str, typer.Option(
                    "--note", help="What they said about themselves")] = "",
                channel: Annotated[str, typer.Option(
                    "--channel", help="The code that brought them (a member's invitation)")
                ] = "",
                as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Record an application that reached you elsewhere (a private chat on WeCom, where the
    platform holds no request): the group's gate decides it like any request."""
    with session(as_user, write=True) as (rt, conn, actor):
        row = entry.do_apply(conn, actor=actor, group_id=group, config=rt.ingest_config,
                             member_id=member_id_by_number(conn, member) if member else None,
                             user=user, name=name, note=note, channel=channel, now=rt.now())
    done(as_json, row, say("join request {id}: {status}", id=row["id"],
                           status=say(f"entry.status.{row['status']}")))


@entry_app.command("invite")
def entry_invite(group: int, member: Annotated[str, typer.Option(
                     "--member", help="The inviting member's number")],
                 account: Annotated[str, typer.Option(
                     help="The connected corp or bot that makes the code (sandbox: any)")],
                 as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """A member's personal invitation code to their group: whoever comes through it passes
    an invitation-only gate."""
    with runtime() as rt:
        actor = acting(rt, as_user)
        with rt.uow.read() as conn:
            member_id = member_id_by_number(conn, member)
        out = entry.do_invitation_code(rt.uow, actor=actor, adapter_for=rt.adapter,
                                       account=account, group_id=group, member_id=member_id)
    done(as_json, out, say("code {code}: {link}", code=out["code"], link=out["link"]))


@entry_app.command("screenshot")
def entry_screenshot(request_id: int,
                     file: Annotated[Path, typer.Option("--file", help="PNG or JPEG")],
                     as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """A share screenshot the applicant sent you privately, attached to their request."""
    with session(as_user, write=True) as (rt, conn, actor):
        if not file.is_file():
            raise InvalidInput("--file {path}: no such file", path=str(file))
        row = entry.do_attach(conn, actor=actor, request_id=request_id,
                              data=file.read_bytes(),
                              folder=rt.settings.pictures_dir, now=rt.now())
    done(as_json, row, say("join request {id}: {status}", id=row["id"],
                           status=say(f"entry.status.{row['status']}")))


@entry_app.command("approve")
def entry_approve(request_id: int, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Let the applicant in."""
    with session(as_user, write=True) as (rt, conn, actor):
        row = entry.do_decide(conn, actor=actor, request_id=request_id, approve=True,
                              capabilities=rt.capabilities, now=rt.now())
    done(as_json, row, say("join request {id} approved", id=request_id))


@entry_app.command("decline")
def entry_decline(request_id: int,
                  reason: Annotated[str, typer.Option(help="Told to the applicant")] = "",
                  silent: Annotated[bool, typer.Option(
                      "--silent", help="Tell the applicant nothing")] = False,
                  as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Turn the request down, telling the applicant why (the group's decline text)."""
    with session(as_user, write=True) as (rt, conn, actor):
        row = entry.do_decide(conn, actor=actor, request_id=request_id, approve=False,
                              reason=reason, tell=not silent, capabilities=rt.capabilities,
                              now=rt.now())
    done(as_json, row, say("join request {id} declined", id=request_id))


@entry_app.command("ask")
def entry_ask(request_id: int, text: Annotated[str, typer.Option("--text")],
              as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Ask the applicant something privately; their reply lands on the request."""
    with session(as_user, write=True) as (rt, conn, actor):
        row = entry.do_ask(conn, actor=actor, request_id=request_id, text=text,
                           capabilities=rt.capabilities, now=rt.now())
    done(as_json, row, say("question sent for join request {id}", id=request_id))


@entry_app.command("expire")
def entry_expire(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Turn down the requests nobody answered within their group's time (the worker does
    this every minute)."""
    with session(as_user, write=True) as (rt, conn, _actor):
        expired = entry.expire_due(conn, now=rt.now(), capabilities=rt.capabilities)
    done(as_json, {"expired": expired}, say("{n} join requests timed out", n=len(expired)))
