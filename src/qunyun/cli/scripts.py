"""``qunyun scripts …``: the script library (话术) — add, edit, show, preview, history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from qunyun.cli.common import (
    EXIT_BAD_INPUT,
    AsOpt,
    JsonOpt,
    console,
    done,
    emit_json,
    fail,
    say,
    session,
)
from qunyun.cli.options import SetOpt, attachment_options, set_values
from qunyun.services import scripts

scripts_app = typer.Typer(help="Script library (话术): add, edit, preview, history",
                          no_args_is_help=True)


@scripts_app.command("list")
def scripts_list(kind: Annotated[str | None, typer.Option(help="Only this kind")] = None,
                 archived: Annotated[bool, typer.Option(help="Archived ones")] = False,
                 as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    with session(as_user, write=False) as (_rt, conn, actor):
        rows = scripts.list_scripts(conn, actor=actor, kind=kind, archived=archived)
    if as_json:
        emit_json(rows)
        return
    table = Table("id", "名称", "类型", "版本", "内容")
    for r in rows:
        table.add_row(str(r["id"]), r["name"], r["kind"], str(r["version"]), r["body"][:50])
    console.print(table)


@scripts_app.command("add")
def scripts_add(
    name: Annotated[str, typer.Option(help="Unique name")],
    body: Annotated[str | None, typer.Option(help="The text, with {variables}")] = None,
    body_file: Annotated[Path | None, typer.Option(help="Read the text from a file")] = None,
    kind: Annotated[str, typer.Option(help="announcement | interactive | faq_answer | pitch | "
                                           "welcome | greeting")] = "announcement",
    var: Annotated[list[str] | None, typer.Option(help="A custom variable (repeatable)")] = None,
    attach: Annotated[list[str] | None, typer.Option(
        help="image:URL | link:URL|title | miniprogram:appid|page|title (repeatable)")] = None,
    as_json: JsonOpt = False, as_user: AsOpt = None,
) -> None:
    text = body if body is not None else _read(body_file)
    with session(as_user, write=True) as (_rt, conn, actor):
        row = scripts.do_create_script(conn, actor=actor, values={
            "name": name, "kind": kind, "body": text, "variables": var or [],
            "attachments": attachment_options(attach)})
    done(as_json, row, say("script {id} {name} saved (version 1)", id=row['id'], name=row['name']))


def _read(path: Path | None) -> str:
    if path is None:
        fail(say("give --body or --body-file"), EXIT_BAD_INPUT)
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{path}: {exc}", EXIT_BAD_INPUT)


@scripts_app.command("edit")
def scripts_edit(
    script: Annotated[str, typer.Argument(help="Script id or name")],
    body: Annotated[str | None, typer.Option(help="New text")] = None,
    name: Annotated[str | None, typer.Option(help="New name")] = None,
    kind: Annotated[str | None, typer.Option(help="New kind")] = None,
    var: Annotated[list[str] | None, typer.Option(help="Custom variables (replace)")] = None,
    note: Annotated[str, typer.Option(help="What changed and why")] = "",
    as_json: JsonOpt = False, as_user: AsOpt = None,
) -> None:
    values = {k: v for k, v in {"body": body, "name": name, "kind": kind,
                                "variables": var}.items() if v is not None}
    with session(as_user, write=True) as (_rt, conn, actor):
        sid = scripts.find_script(conn, actor=actor, ref=script)["id"]
        row = scripts.do_update_script(conn, actor=actor, script_id=sid, values=values, note=note)
    done(as_json, row, say("script {id} is at version {version}", id=row['id'],
                           version=row['version']))


@scripts_app.command("show")
def scripts_show(script: Annotated[str, typer.Argument(help="Script id or name")],
                 as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    with session(as_user, write=False) as (_rt, conn, actor):
        row = scripts.find_script(conn, actor=actor, ref=script)
        row["history"] = scripts.script_history(conn, actor=actor, script_id=row["id"])
    if as_json:
        emit_json(row)
        return
    console.print(f"[bold]{escape(row['name'])}[/bold] ({row['kind']}, v{row['version']})\n"
                  f"{escape(row['body'])}")
    for h in row["history"]:
        console.print(f"  v{h['version']} {h['changed_at']:%Y-%m-%d %H:%M} {h['changed_by']} "
                      f"{h['note']}", highlight=False)


@scripts_app.command("preview")
def scripts_preview(script: Annotated[str, typer.Argument(help="Script id or name")],
                    group: Annotated[int | None, typer.Option(help="For this group")] = None,
                    member: Annotated[int | None, typer.Option(help="For this member id")] = None,
                    set_: SetOpt = None, as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    with session(as_user, write=False) as (rt, conn, actor):
        sid = scripts.find_script(conn, actor=actor, ref=script)["id"]
        out = scripts.preview_script(conn, actor=actor, script_id=sid, group_id=group,
                                     member_id=member, values=set_values(set_), tz=rt.settings.tz)
    missing = "\nmissing: " + ", ".join(out["missing"]) if out["missing"] else ""
    done(as_json, out, out["text"] + missing)


# --- playbooks ----------------------------------------------------------------------------
