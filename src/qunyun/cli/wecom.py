"""``qunyun wecom …``: connect a corp, sync its customer groups, process callbacks, join codes
(群活码) with rotation, group welcome templates, and follow owner-confirmed group sends."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.table import Table

from qunyun.adapters.platforms.wecom.adapter import WecomAdapter
from qunyun.bootstrap import Runtime, wecom_adapter
from qunyun.cli.common import AsOpt, JsonOpt, console, done, emit_json, fail, runtime, say
from qunyun.services import (
    confirmations,
    wecom,
    wecom_callbacks,
    wecom_join_codes,
    wecom_sync,
    wecom_welcome,
)
from qunyun.services.users import SYSTEM, Actor, actor_by_username

wecom_app = typer.Typer(help="WeCom (企业微信) customer groups: setup, sync, join codes, "
                        "welcome templates, group sends", no_args_is_help=True)
join_app = typer.Typer(help="Join codes (群活码) that rotate groups as they fill",
                       no_args_is_help=True)
wecom_app.add_typer(join_app, name="join-code")


def _actor(rt: Runtime, as_user: str | None) -> Actor:
    with rt.uow.read() as conn:
        return actor_by_username(conn, as_user) if as_user else SYSTEM


def _adapter(rt: Runtime) -> WecomAdapter:
    adapter = wecom_adapter(rt)
    if adapter is None:
        fail(say("the WeCom adapter is not configured in this runtime"))
    return adapter


SECRET_HELP = ("; '-' reads it from stdin (one line per '-', in the order secret, token, "
               "aes-key), else the environment variable named — a value on the command "
               "line is visible to every user of the machine in `ps`")


@wecom_app.command("add-corp")
def add_corp(corp_id: Annotated[str, typer.Option("--corp-id", help="企业ID (ww…)")],
             agent_id: Annotated[int, typer.Option("--agent-id", help="Self-built app AgentId")],
             secret: Annotated[str, typer.Option(
                 envvar="QUNYUN_WECOM_SECRET",
                 help="The app's Secret (stored encrypted)" + SECRET_HELP)] = "",
             token: Annotated[str, typer.Option(envvar="QUNYUN_WECOM_TOKEN",
                                                help="Callback Token" + SECRET_HELP)] = "",
             aes_key: Annotated[str, typer.Option(
                 "--aes-key", envvar="QUNYUN_WECOM_AES_KEY",
                 help="Callback EncodingAESKey (43 characters)" + SECRET_HELP)] = "",
             name: Annotated[str, typer.Option()] = "", as_user: AsOpt = None,
             as_json: JsonOpt = False) -> None:
    """Connect a corp (or replace its credentials); prints the callback URL to set."""
    values = {"secret": secret, "token": token, "aes-key": aes_key}
    for option, value in values.items():
        if value == "-":
            values[option] = sys.stdin.readline().strip()
        if not values[option]:
            fail(say("--{option}: give it on stdin ('-') or in QUNYUN_WECOM_{upper}",
                     option=option, upper=option.replace('-', '_').upper()))
    with runtime() as rt:
        actor = _actor(rt, as_user)
        with rt.uow.write() as conn:
            corp = wecom.do_add_corp(conn, actor=actor, box=rt.box, corp_id=corp_id,
                                     agent_id=agent_id, secret=values["secret"],
                                     token=values["token"], aes_key=values["aes-key"],
                                     name=name, now=rt.now())
        base = rt.settings.public_url or "https://<QUNYUN_PUBLIC_URL>"
    done(as_json, corp, say("corp {corp_id} connected; callback URL: {base}{callback_path}",
                            corp_id=corp_id, base=base, callback_path=corp['callback_path']))


@wecom_app.command("list")
def list_corps(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Connected corps with their sync status."""
    with runtime() as rt, rt.uow.read() as conn:
        corps = wecom.list_corps(conn, actor=_actor(rt, as_user))
    if as_json:
        emit_json(corps)
        return
    table = Table(say("corp"), say("name"), say("agent"), say("groups"), say("members"),
                  say("last sync"), say("pending"), say("last error"))
    for c in corps:
        s = c["status"]
        table.add_row(c["corp_id"], c["name"], str(c["agent_id"]), str(s.get("groups", "")),
                      str(s.get("members", "")), str(s.get("last_sync_at", "")),
                      str(c["pending_callbacks"]), str(s.get("last_error", "")))
    console.print(table)


@wecom_app.command("sync")
def sync(corp_id: str, as_json: JsonOpt = False) -> None:
    """Read every customer group of the corp from WeCom and reconcile; mirror corp tags."""
    with runtime() as rt:
        report = wecom_sync.sync_corp(rt.uow, adapter=_adapter(rt), corp_id=corp_id)
        rotated = wecom_join_codes.rotate_join_codes(
            rt.uow, adapter=_adapter(rt))
    data = {**asdict(report), "rotations": [asdict(r) for r in rotated]}
    done(as_json, data,
         say("{groups} groups, {members} members listed; {joined} joins and {left} leaves "
             "reconciled; {tags} tags; {n_errors} errors",
             groups=report.groups, members=report.members, joined=report.changes.joined,
             left=report.changes.left, tags=report.tags, n_errors=len(report.errors)))
    if report.errors:
        for e in report.errors[:10]:
            console.print(f"[yellow]{e}[/yellow]", highlight=False)


@wecom_app.command("process")
def process(as_json: JsonOpt = False) -> None:
    """Process stored callbacks now (the worker does this continuously)."""
    with runtime() as rt:
        stats = wecom_callbacks.process_callbacks(rt.uow, adapter=_adapter(rt),
                                                  config=rt.ingest_config)
        rotated = wecom_join_codes.rotate_join_codes(rt.uow, adapter=_adapter(rt))
    data = {**asdict(stats), "rotations": [asdict(r) for r in rotated]}
    done(as_json, data,
         say("{processed} callbacks processed ({events} events), {failed} failed, "
             "{reconciled} groups reconciled ({deferred} deferred), {n_rotated} join codes "
             "rotated", processed=stats.processed, events=stats.events, failed=stats.failed,
             reconciled=stats.reconciled, deferred=stats.deferred, n_rotated=len(rotated)))


@wecom_app.command("callbacks")
def callbacks(status: Annotated[str | None, typer.Option()] = None,
              limit: Annotated[int, typer.Option()] = 50, as_json: JsonOpt = False) -> None:
    """Recent callbacks as received (pending, processed or failed with the reason)."""
    with runtime() as rt, rt.uow.read() as conn:
        rows = wecom_callbacks.list_callbacks(conn, actor=SYSTEM, status=status, limit=limit)
    if as_json:
        emit_json(rows)
        return
    table = Table("id", say("corp"), say("event"), say("status"), say("received"), say("error"))
    for r in rows:
        table.add_row(str(r["id"]), r["corp_id"], r["event"], r["status"],
                      str(r["received_at"]), r["error"])
    console.print(table)


@join_app.command("add")
def join_add(corp_id: Annotated[str, typer.Option("--corp-id")],
             channel: Annotated[str, typer.Option(help="Channel code, ≤30 characters (the "
                                                  "join code's state)")],
             group: Annotated[list[str], typer.Option("--group", help="Group id or chat id "
                                                      "(repeatable; the first 5 attach, the "
                                                      "rest are spares)")],
             capacity: Annotated[int, typer.Option(help="100, 200 or 500")] = 200,
             fill: Annotated[float, typer.Option(help="Rotate a group out at this share of "
                                                 "capacity")] = 0.9,
             remark: Annotated[str, typer.Option()] = "", as_user: AsOpt = None,
             as_json: JsonOpt = False) -> None:
    """Create a join code for a channel."""
    with runtime() as rt:
        code = wecom_join_codes.do_create_join_code(rt.uow, actor=_actor(rt, as_user),
                                                    adapter=_adapter(rt), corp_id=corp_id,
                                                    channel=channel, chats=group, capacity=capacity,
                                                    fill_ratio=fill, remark=remark)
    done(as_json, code,
         say("join code {id} for channel {channel}: {attached} groups attached, {spares} "
             "spares; QR {qr_code}", id=code["id"], channel=channel,
             attached=len(code["chat_ids"]), spares=len(code["spare_chat_ids"]),
             qr_code=code["qr_code"]))


@join_app.command("list")
def join_list(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Join codes with each group's fill level and the members each brought."""
    with runtime() as rt, rt.uow.read() as conn:
        codes = wecom_join_codes.list_join_codes(conn, actor=_actor(rt, as_user))
    if as_json:
        emit_json(codes)
        return
    table = Table("id", say("channel"), say("group"), say("role"), say("members"), say("fill"),
                  say("via code"))
    for c in codes:
        for g in c["groups"]:
            table.add_row(str(c["id"]), c["channel"], g["name"] or g["chat_id"], g["role"],
                          str(g["members"]), f"{g['fill']:.0%}", str(g["via_code"]))
    console.print(table)


@join_app.command("spares")
def join_spares(code_id: int, group: Annotated[list[str], typer.Option("--group")],
                as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Add spare groups that rotate in as attached groups fill."""
    with runtime() as rt:
        code = wecom_join_codes.do_add_spares(rt.uow, actor=_actor(rt, as_user), code_id=code_id,
                                              chats=group)
    done(as_json, code, say("join code {code_id}: {n_spare_chat_ids} spares", code_id=code_id,
                            n_spare_chat_ids=len(code['spare_chat_ids'])))


@join_app.command("rotate")
def join_rotate(as_json: JsonOpt = False) -> None:
    """Rotate full groups out of every join code now (the worker does it after syncs)."""
    with runtime() as rt:
        rotated = wecom_join_codes.rotate_join_codes(rt.uow, adapter=_adapter(rt))
    done(as_json, [asdict(r) for r in rotated], say("{n_rotated} join codes rotated",
                                                    n_rotated=len(rotated)))


@join_app.command("delete")
def join_delete(code_id: int, as_user: AsOpt = None) -> None:
    with runtime() as rt:
        wecom_join_codes.do_delete_join_code(
            rt.uow, actor=_actor(rt, as_user), adapter=_adapter(rt), code_id=code_id)
    console.print(say("join code {code_id} deleted", code_id=code_id))


@wecom_app.command("welcome-add")
def welcome_add(corp_id: Annotated[str, typer.Option("--corp-id")],
                text: Annotated[str, typer.Option()],
                image_url: Annotated[str, typer.Option("--image-url")] = "",
                no_notify: Annotated[bool, typer.Option("--no-notify", help="Do not notify "
                                                        "group owners")] = False,
                as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Register a group welcome template (owners choose it in the WeCom client)."""
    with runtime() as rt:
        tpl = wecom_welcome.do_add_welcome_template(
            rt.uow, actor=_actor(rt, as_user), adapter=_adapter(rt), corp_id=corp_id, text=text,
            image_url=image_url, notify=not no_notify)
    done(as_json, tpl, say("welcome template {template_id} registered",
                           template_id=tpl['template_id']))


@wecom_app.command("welcome-list")
def welcome_list(as_json: JsonOpt = False) -> None:
    with runtime() as rt, rt.uow.read() as conn:
        rows = wecom_welcome.list_welcome_templates(conn, actor=SYSTEM)
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        console.print(f"{r['template_id']}  {r['text'][:60]}", highlight=False)


def _confirm(action: str, task_id: int, as_user: str | None) -> dict[str, Any]:
    with runtime() as rt:
        actor = _actor(rt, as_user)
        if action == "remind":
            n = confirmations.do_remind(rt.uow, actor=actor, adapters=rt.adapters,
                                        task_id=task_id)
            return {"task_id": task_id, "reminded": n}
        confirmations.do_cancel(rt.uow, actor=actor, adapters=rt.adapters, task_id=task_id,
                                now=rt.now())
        return {"task_id": task_id, "cancelled": True}


@wecom_app.command("send-remind")
def send_remind(task_id: int, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Remind group owners to confirm a group send (≤ 3 times a day)."""
    done(as_json, _confirm("remind", task_id, as_user), say("owners of task {task_id} reminded",
                                                            task_id=task_id))


@wecom_app.command("send-cancel")
def send_cancel(task_id: int, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Withdraw a group send that owners have not confirmed yet."""
    done(as_json, _confirm("cancel", task_id, as_user), say("task {task_id}: send withdrawn",
                                                            task_id=task_id))
