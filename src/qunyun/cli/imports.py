"""``qunyun ingest``, ``qunyun import`` and ``qunyun import-snapshot``: events, chat exports
and member lists into the store."""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from qunyun.cli.common import (
    EXIT_BAD_INPUT,
    JsonOpt,
    console,
    emit_json,
    err,
    fail,
    runtime,
    say,
    settings,
)

# --- ingest -----------------------------------------------------------------------------

def ingest(
    path: Annotated[Path, typer.Argument(help="JSON Lines file of raw platform payloads")],
    platform: Annotated[str, typer.Option(help="Platform adapter that parses the file")]
    = "sandbox",
    as_json: JsonOpt = False,
) -> None:
    """Feed raw platform payloads through the event path, all or nothing."""
    from qunyun.adapters.platforms.base import ParseError
    from qunyun.services.ingest import do_ingest_event

    if not path.is_file():
        fail(say("{path}: no such file", path=path), EXIT_BAD_INPUT)
    totals: dict[str, Any] = {"file": str(path), "lines": 0, "events": 0, "duplicates": 0,
                              "skipped": {}, "outbox": 0}
    with runtime() as rt:
        adapter = rt.adapter(platform)
        with rt.uow.write() as conn, path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                totals["lines"] += 1
                try:
                    raw = json.loads(line)
                    if not isinstance(raw, dict):
                        raise ParseError("a line must hold a JSON object")
                    parsed = adapter.parse(raw)
                except (ValueError, ParseError) as exc:
                    conn.rollback()
                    fail(say("{path}:{lineno}: {exc} (nothing was imported)", path=path,
                             lineno=lineno, exc=exc), EXIT_BAD_INPUT)
                for kind, n in parsed.skipped.items():
                    totals["skipped"][kind] = totals["skipped"].get(kind, 0) + n
                for event in parsed.events:
                    result = do_ingest_event(conn, event, config=rt.ingest_config)
                    totals["events"] += 1
                    totals["duplicates"] += int(result.duplicate)
                    totals["outbox"] += len(result.outbox_ids)
    if as_json:
        emit_json(totals)
    else:
        console.print(say("{events} events from {lines} lines ({duplicates} already known, "
                          "skipped {skipped}), {outbox} actions queued",
                          events=totals['events'], lines=totals['lines'],
                          duplicates=totals['duplicates'],
                          skipped=totals['skipped'], outbox=totals['outbox']))


# --- import -----------------------------------------------------------------------------

TOTAL_KEYS = ("new_members", "messages", "duplicate_messages", "joins",
              "leaves", "kicks", "renames", "recalls", "unparsed_notices", "skipped")


def import_exports(
    paths: Annotated[list[Path], typer.Argument(help="Export files")],
    fmt: Annotated[str, typer.Option("--format", help="auto, memotrace, chatlog-json, "
                                     "telegram or irc")] = "auto",
    group_name: Annotated[str | None, typer.Option(help="Group name (else from the file)")]
    = None,
    on_error: Annotated[str, typer.Option(help="fail: a bad row stops the file and stores "
                                          "nothing of it; skip: list it and go on")] = "fail",
    day: Annotated[str | None, typer.Option("--date", help="The day an IRC log covers, "
                                            "when its file name carries none (2024-01-15)")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """Import chat exports (WeChat MemoTrace CSV, chatlog JSON, Telegram JSON, IRC logs)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from qunyun.services.imports import FORMATS, ImportFailed, do_import_file

    if fmt != "auto" and fmt not in FORMATS:
        fail(say("--format: auto or one of {formats}", formats=', '.join(FORMATS)), EXIT_BAD_INPUT)
    if on_error not in ("fail", "skip"):
        fail(say("--on-error: fail or skip"), EXIT_BAD_INPUT)
    try:
        log_day = date.fromisoformat(day) if day else None
    except ValueError:
        fail(say("--date {day!r}: {problem}", day=day, problem=say('cli.bad_date')), EXIT_BAD_INPUT)
    totals: dict[str, Any] = {"format": fmt, "groups": 0, "members": 0,
                              **dict.fromkeys(TOTAL_KEYS, 0), "errors": [],
                              "files": []}
    show = console.is_terminal and not as_json
    group_ids: set[int] = set()
    member_ids: set[int] = set()
    with runtime() as rt, Progress("{task.description}", BarColumn(), DownloadColumn(),
                                   TimeRemainingColumn(), console=err,
                                   disable=not show) as bar:
        for path in paths:
            task = bar.add_task(path.name, total=path.stat().st_size if path.is_file() else 0)
            try:
                report = do_import_file(
                    rt.uow, path, fmt=fmt, group_name=group_name, on_error=on_error,
                    now=rt.now(), progress=partial(bar.advance, task), rule_clock=rt.clock(),
                    day=log_day)
            except ImportFailed as exc:
                totals["errors"].append(exc.error)
                if as_json:
                    emit_json(totals)
                fail(say("{exc} (nothing of this file was imported)", exc=exc), EXIT_BAD_INPUT)
            data = report.as_dict()
            totals["files"].append(data)
            totals["format"] = data["format"] if len(paths) == 1 else "mixed"
            for key in TOTAL_KEYS:
                totals[key] += data[key]
            group_ids |= report.group_ids
            member_ids |= report.member_ids
            totals["groups"], totals["members"] = len(group_ids), len(member_ids)
            totals["errors"].extend(data["errors"])
            totals.setdefault("ambiguous_names", []).extend(
                {"file": data["file"], **a} for a in data["ambiguous_names"])
    if as_json:
        emit_json(totals)
        return
    console.print(
        say("{n_paths} file(s): {messages} messages ({duplicate_messages} already there), "
            "{members} members ({new_members} new) in {groups} group(s); joins {joins}, leaves "
            "{leaves}, removals {kicks}, renames {renames}, recalls {recalls}; {skipped} rows "
            "skipped", n_paths=len(paths), messages=totals['messages'],
            duplicate_messages=totals['duplicate_messages'], members=totals['members'],
            new_members=totals['new_members'], groups=totals['groups'],
            joins=totals['joins'], leaves=totals['leaves'], kicks=totals['kicks'],
            renames=totals['renames'], recalls=totals['recalls'], skipped=totals['skipped']))
    for error in totals["errors"][:20]:
        err.print(f"  {error['file']}:{error['line']}: {error['reason']}", highlight=False)
    for unsure in totals.get("ambiguous_names", [])[:20]:
        err.print(say("{file}:{line}: the names {names!r} read two ways (a name with 、 in it, or "
                      "several people); check the members", file=unsure['file'],
                      line=unsure['line'], names=unsure['names']),
                  highlight=False)


def import_snapshot(
    path: Annotated[Path, typer.Argument(help="Member list: chatlog chatroom JSON or CSV")],
    at: Annotated[str, typer.Option(help="When the list was taken (ISO time; a time without "
                                    "zone is in the team's time zone)")],
    fmt: Annotated[str, typer.Option("--format", help="auto, chatroom-json or members-csv")]
    = "auto",
    platform: Annotated[str, typer.Option(help="Whose ids the list holds")] = "wechat",
    as_json: JsonOpt = False,
) -> None:
    """Derive leaves (and implied memberships) from a member-list snapshot."""
    from qunyun.services.imports import ImportFailed, do_import_snapshot

    s = settings()
    try:
        taken = datetime.fromisoformat(at)
    except ValueError:
        fail(say("--at: an ISO time like 2026-11-20T21:00, not {at!r}", at=at), EXIT_BAD_INPUT)
    if taken.tzinfo is None:
        taken = taken.replace(tzinfo=s.tz)
    with runtime(s) as rt:
        try:
            report = do_import_snapshot(rt.uow, path, at=taken, fmt=fmt, platform=platform)
        except ImportFailed as exc:
            fail(say("{exc} (nothing was imported)", exc=exc), EXIT_BAD_INPUT)
    if as_json:
        emit_json(report.__dict__)
    else:
        console.print(say("{groups} group(s), {listed} listed: {left_derived} left since the "
                          "last list, {joined_implied} present without a recorded join",
                          groups=report.groups, listed=report.listed,
                          left_derived=report.left_derived,
                          joined_implied=report.joined_implied))
