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
from qunyun.cli.common import AsOpt, JsonOpt, acting, console, done, emit_json, fail, runtime, say
from qunyun.cli.join_codes import join_app
from qunyun.services import (
    confirmations,
    join_codes,
    wecom,
    wecom_callbacks,
    wecom_sync,
    wecom_welcome,
)
from qunyun.services.users import SYSTEM

wecom_app = typer.Typer(help="WeCom (企业微信) customer groups: setup, sync, join codes, "
                        "welcome templates, group sends", no_args_is_help=True)
# the join codes' commands, also at ``qunyun join-codes`` (any platform that can make them)
wecom_app.add_typer(join_app, name="join-code")


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
        actor = acting(rt, as_user)
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
        corps = wecom.list_corps(conn, actor=acting(rt, as_user))
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
        rotated = join_codes.rotate_join_codes(rt.uow, adapters=rt.adapters)
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
        rotated = join_codes.rotate_join_codes(rt.uow, adapters=rt.adapters)
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
            rt.uow, actor=acting(rt, as_user), adapter=_adapter(rt), corp_id=corp_id, text=text,
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
        actor = acting(rt, as_user)
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
