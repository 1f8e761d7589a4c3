"""``qunyun join-codes`` (also ``qunyun wecom join-code``): join codes (群活码) on any platform
that can make them — create one per channel, list their groups' fill, add spares, rotate,
delete."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from qunyun.cli.common import AsOpt, JsonOpt, acting, console, done, emit_json, fail, runtime, say
from qunyun.i18n import Term
from qunyun.services import join_codes

join_app = typer.Typer(help="Join codes (群活码) that rotate groups as they fill",
                       no_args_is_help=True)


@join_app.command("add")
def join_add(account: Annotated[str, typer.Option("--account", "--corp-id",
                                                  help="The WeCom corp id, or the bot")],
             channel: Annotated[str, typer.Option(help="Channel code, ≤30 characters (the "
                                                  "join code's state)")],
             group: Annotated[list[str], typer.Option("--group", help="Group id or chat id "
                                                      "(repeatable; the first 5 attach, the "
                                                      "rest are spares)")],
             platform: Annotated[str, typer.Option(help="wecom, sandbox, …")] = "wecom",
             capacity: Annotated[int, typer.Option(help="100, 200 or 500")] = 200,
             fill: Annotated[float, typer.Option(help="Rotate a group out at this share of "
                                                 "capacity")] = 0.9,
             remark: Annotated[str, typer.Option()] = "", as_user: AsOpt = None,
             as_json: JsonOpt = False) -> None:
    """Create a join code for a channel."""
    with runtime() as rt:
        adapter = rt.adapters.get(platform)
        if adapter is None:
            fail(say("no adapter for platform {platform!r}", platform=platform))
        code = join_codes.do_create_join_code(rt.uow, actor=acting(rt, as_user),
                                              adapter=adapter, account=account,
                                              channel=channel, chats=group, capacity=capacity,
                                              fill_ratio=fill, remark=remark)
    done(as_json, code,
         say("join code {id} for channel {channel}: {attached} groups attached, {spares} "
             "spares; QR {qr_code}", id=code["id"], channel=channel,
             attached=len(code["chat_ids"]), spares=len(code["spare_chat_ids"]),
             qr_code=code["qr_code"]))


@join_app.command("list")
def join_list(platform: Annotated[str | None, typer.Option(help="Only this platform's")] = None,
              as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Join codes with each group's fill level and the members each brought."""
    with runtime() as rt, rt.uow.read() as conn:
        codes = join_codes.list_join_codes(conn, actor=acting(rt, as_user), platform=platform)
    if as_json:
        emit_json(codes)
        return
    table = Table("id", say("channel"), say("group"), say("role"), say("members"), say("fill"),
                  say("via code"))
    for c in codes:
        for g in c["groups"]:
            table.add_row(str(c["id"]), c["channel"], g["name"] or g["chat_id"],
                          Term("wecom.role", g["role"]).in_language(rt.settings.language),
                          str(g["members"]), f"{g['fill']:.0%}", str(g["via_code"]))
    console.print(table)


@join_app.command("spares")
def join_spares(code_id: int, group: Annotated[list[str], typer.Option("--group")],
                as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Add spare groups that rotate in as attached groups fill."""
    with runtime() as rt:
        code = join_codes.do_add_spares(rt.uow, actor=acting(rt, as_user), code_id=code_id,
                                        chats=group)
    done(as_json, code, say("join code {code_id}: {n_spare_chat_ids} spares", code_id=code_id,
                            n_spare_chat_ids=len(code["spare_chat_ids"])))


@join_app.command("rotate")
def join_rotate(as_json: JsonOpt = False) -> None:
    """Rotate full groups out of every join code now (the worker does it after syncs)."""
    with runtime() as rt:
        rotated = join_codes.rotate_join_codes(rt.uow, adapters=rt.adapters)
    done(as_json, [asdict(r) for r in rotated], say("{n_rotated} join codes rotated",
                                                    n_rotated=len(rotated)))


@join_app.command("delete")
def join_delete(code_id: int, as_user: AsOpt = None) -> None:
    """Delete a join code on its platform and here."""
    with runtime() as rt:
        join_codes.do_delete_join_code(rt.uow, actor=acting(rt, as_user), adapters=rt.adapters,
                                       code_id=code_id)
    console.print(say("join code {code_id} deleted", code_id=code_id))
