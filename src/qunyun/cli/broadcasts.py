"""``qunyun broadcast …``: broadcasts with frequency caps, and the delivery log."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from qunyun.cli.common import (
    AsOpt,
    JsonOpt,
    console,
    done,
    emit_json,
    say,
    session,
    settings,
)
from qunyun.cli.options import (
    AllOpt,
    GroupsOpt,
    SegmentOpt,
    SeriesOpt,
    SetOpt,
    TagOpt,
    attachment_options,
    local_option,
    set_values,
    target_of,
)
from qunyun.i18n import said
from qunyun.services import broadcasts, pushes, scripts

broadcast_app = typer.Typer(help="Broadcasts with frequency caps, and the delivery log",
                            no_args_is_help=True)


@broadcast_app.command("send")
def broadcast_send(
    name: Annotated[str, typer.Option(help="A name for the log")],
    text: Annotated[str | None, typer.Option(help="The text (or --script)")] = None,
    script: Annotated[str | None, typer.Option(help="Script id or name")] = None,
    at: Annotated[str | None, typer.Option(help="Send at, 2026-12-01 09:00 (default now)")]
    = None,
    groups: GroupsOpt = None, group_tag: TagOpt = None, series: SeriesOpt = None,
    all_groups: AllOpt = False, segment: SegmentOpt = None, set_: SetOpt = None,
    attach: Annotated[list[str] | None, typer.Option(help="image:URL | link:URL|title")] = None,
    dry_run: Annotated[bool, typer.Option(help="Show recipients and caps; store nothing")]
    = False,
    pin: Annotated[bool, typer.Option(help="Pin it in each group once sent (Telegram)")]
    = False,
    as_json: JsonOpt = False, as_user: AsOpt = None,
) -> None:
    target = target_of(groups, group_tag, series, all_groups, segment)
    with session(as_user, write=not dry_run) as (rt, conn, actor):
        sid = scripts.find_script(conn, actor=actor, ref=script)["id"] if script else None
        send_at = local_option(at, rt.settings.tz, "--at")
        common: dict[str, Any] = {"target": target, "script_id": sid, "text": text,
                                  "attachments": attachment_options(attach),
                                  "variables": set_values(set_), "send_at": send_at,
                                  "pin": pin}
        if dry_run:
            out = broadcasts.preview_broadcast(conn, actor=actor, clock=rt.clock(), **common)
            message = (f"{out['recipients']} recipients ({out['target']}): " + ", ".join(
                f"{k} {v}" for k, v in out["counts"].items() if v))
            for w in out["warnings"]:
                message += f"\n  ! {w}"
            done(as_json, out, message)
            return
        row = broadcasts.do_create_broadcast(conn, actor=actor, name=name, **common)
    done(as_json, row,
         say("broadcast {id} scheduled for {send_at} ({target_text}); the worker sends it",
                           id=row['id'], send_at=row['send_at'], target_text=row['target_text']))


@broadcast_app.command("list")
def broadcast_list(as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    with session(as_user, write=False) as (_rt, conn, actor):
        rows = broadcasts.list_broadcasts(conn, actor=actor)
    if as_json:
        emit_json(rows)
        return
    lang = settings().language
    table = Table("id", say("name"), say("target"), say("time"), say("status"), say("text"))
    for r in rows:
        table.add_row(str(r["id"]), r["name"], said(r["target_text"], lang), str(r["send_at"]),
                      say(f"content.bstatus.{r['status']}"),
                      r["text"][:40])
    console.print(table)


@broadcast_app.command("cancel")
def broadcast_cancel(broadcast: Annotated[int, typer.Argument(help="Broadcast id")],
                     as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    with session(as_user, write=True) as (_rt, conn, actor):
        row = broadcasts.do_cancel_broadcast(conn, actor=actor, broadcast_id=broadcast)
    done(as_json, row, say("broadcast {broadcast} cancelled", broadcast=broadcast))


@broadcast_app.command("log")
def broadcast_log(playbook: Annotated[int | None, typer.Option(help="Only this playbook")]
                  = None,
                  broadcast: Annotated[int | None, typer.Option(help="Only this broadcast")]
                  = None,
                  limit: Annotated[int, typer.Option(help="How many")] = 50,
                  as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    """The delivery log: every fired occurrence with what was sent, queued, dropped."""
    with session(as_user, write=False) as (_rt, conn, actor):
        rows = pushes.list_deliveries(conn, actor=actor, limit=limit, playbook_id=playbook,
                                      broadcast_id=broadcast)
    if as_json:
        emit_json(rows)
        return
    table = Table("id", "计划时间", "来源", "对象数", "已排", "顺延", "排队", "丢弃", "跳过",
                  "发送状态")
    for r in rows:
        table.add_row(str(r["id"]), f"{r['due_at']:%Y-%m-%d %H:%M}", r["source"],
                      str(r["recipients"]), str(r["planned"]), str(r["deferred"]),
                      str(r["queued"]), str(r["dropped"]), str(r["skipped"]),
                      " ".join(f"{k}:{v}" for k, v in r["outbox"].items()))
    console.print(table)
