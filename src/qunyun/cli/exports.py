"""``qunyun export KIND --out FILE``: members, groups, messages, events, activities,
conversions or a plan's days as CSV or XLSX, for people who continue in a spreadsheet
(phones masked for roles without personal-data access; nothing a member wrote becomes a
formula)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qunyun.cli.common import AsOpt, JsonOpt, acting, done, runtime, say
from qunyun.services import exports
from qunyun.services.errors import InvalidInput


def export_cmd(kind: Annotated[str, typer.Argument(
                   help="members, groups, messages, events, activities, conversions, plan")],
               out: Annotated[Path, typer.Option("--out", help="FILE.csv or FILE.xlsx")],
               fmt: Annotated[str | None, typer.Option(
                   "--format", help="csv or xlsx (else from the file name)")] = None,
               since: Annotated[str | None, typer.Option(
                   "--from", help="Messages, events, conversions from (2026-12-01)")] = None,
               until: Annotated[str | None, typer.Option(
                   "--to", help="…through this day")] = None,
               plan: Annotated[str | None, typer.Option(help="The plan (kind plan)")] = None,
               language: Annotated[str, typer.Option(help="zh-CN or en")] = "zh-CN",
               as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Write one kind of data to a spreadsheet file (audited)."""
    chosen = exports.path_format(out, fmt)
    with runtime() as rt:
        actor = acting(rt, as_user)
        tz = rt.settings.tz
        try:
            handle = out.open("wb")
        except OSError as exc:
            raise InvalidInput("--out {path}: {reason}", path=str(out),
                               reason=exc.strerror or str(exc)) from None
        try:
            with handle:
                rows = exports.do_export(rt.uow, actor=actor, kind=kind, fmt=chosen, out=handle,
                                         tz=tz, now=rt.now(), language=language, since=since,
                                         until=until, plan=plan)
        except BaseException:
            out.unlink(missing_ok=True)  # no half-written file left behind
            raise
    done(as_json, {"file": str(out), "format": chosen, "kind": kind, "rows": rows},
         say("{rows} rows written to {out}", rows=rows, out=out))
