"""``qunyun`` command line. Exit codes: 0 ok, 1 failure, 2 bad input or usage.

Every command that reports something accepts ``--json`` for machine-readable output.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import sys
import threading
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from qunyun.bootstrap import Runtime
from qunyun.cli import activities as activities_cli
from qunyun.cli import automation as automation_cli
from qunyun.cli import content as content_cli
from qunyun.cli import crm
from qunyun.cli import wecom as wecom_cli
from qunyun.cli.common import (
    EXIT_BAD_INPUT,
    AsOpt,
    JsonOpt,
    console,
    emit_json,
    err,
    fail,
    runtime,
    say,
    session,
    settings,
    state,
)
from qunyun.native import NativeState

app = typer.Typer(help="群运 qunyun — community operations", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
db_app = typer.Typer(help="Database migrations", no_args_is_help=True)
users_app = typer.Typer(help="Staff accounts", no_args_is_help=True)
outbox_app = typer.Typer(help="The delivery outbox", no_args_is_help=True)
tasks_app = typer.Typer(help="Staff tasks", no_args_is_help=True)
native_app = typer.Typer(help="The compiled rule engine (mypyc)", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(wecom_cli.wecom_app, name="wecom")
app.add_typer(users_app, name="users")
app.add_typer(outbox_app, name="outbox")
app.add_typer(tasks_app, name="tasks")
app.add_typer(native_app, name="native")
app.add_typer(crm.members_app, name="members")
app.add_typer(crm.tags_app, name="tags")
app.add_typer(crm.segments_app, name="segments")
app.add_typer(crm.leads_app, name="leads")
app.add_typer(automation_cli.automation_app, name="automation")
app.add_typer(automation_cli.moderate_app, name="moderate")
app.add_typer(automation_cli.faq_app, name="faq")
app.add_typer(automation_cli.checkins_app, name="checkins")
app.add_typer(automation_cli.draws_app, name="draws")
app.command("simulate")(automation_cli.simulate)
app.add_typer(content_cli.scripts_app, name="scripts")
app.add_typer(content_cli.playbook_app, name="playbook")
app.add_typer(content_cli.broadcast_app, name="broadcast")
app.command("timeline")(content_cli.timeline_cmd)
app.add_typer(activities_cli.activities_app, name="activities")

@app.callback()
def main(
    db: Annotated[str | None, typer.Option("--db", help="Database URL (else QUNYUN_DATABASE_URL, "
                                           "else ./var/qunyun.db)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    state.db = db
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# --- db ---------------------------------------------------------------------------------

@db_app.command("upgrade")
def db_upgrade(as_json: JsonOpt = False) -> None:
    """Create or migrate the database to the newest schema."""
    from qunyun.adapters.storage import migrate as migrations

    with runtime(migrate=True) as rt:
        revision = migrations.current_revision(rt.engine)
        url = rt.engine.url.render_as_string(hide_password=True)
    if as_json:
        emit_json({"database": url, "revision": revision})
    else:
        console.print(f"database {url} at revision {revision}")


@db_app.command("current")
def db_current(as_json: JsonOpt = False) -> None:
    """Show the database's schema revision and the newest one."""
    from qunyun.adapters.storage import migrate as migrations
    from qunyun.adapters.storage.db import make_engine

    s = settings()
    engine = make_engine(s.resolved_database_url())
    try:
        data = {"revision": migrations.current_revision(engine),
                "head": migrations.head_revision()}
    except Exception as exc:
        fail(f"cannot read the database: {exc}")
    finally:
        engine.dispose()
    if as_json:
        emit_json(data)
    else:
        console.print(f"current {data['revision']} · head {data['head']}")


@db_app.command("recount")
def db_recount(as_json: JsonOpt = False) -> None:
    """Rebuild the per-member event and message totals that segments read."""
    from qunyun.services.counts import do_recount
    from qunyun.services.users import SYSTEM

    with runtime() as rt, rt.uow.write() as conn:
        rows = do_recount(conn, actor=SYSTEM)
    if as_json:
        emit_json({"rows": rows})
    else:
        console.print(f"{rows} member totals rebuilt")


# --- native ---------------------------------------------------------------------------

def _native_report(result: NativeState, as_json: bool) -> None:
    if as_json:
        emit_json({"build": result.build, "active": result.active, "reason": result.reason})
    else:
        console.print(f"{result.build}: {result.reason}", highlight=False)


@native_app.command("status")
def native_status(as_json: JsonOpt = False) -> None:
    """Whether this process runs the compiled engine, and why (not)."""
    from qunyun import native

    _native_report(native.state, as_json)


@native_app.command("build")
def native_build(as_json: JsonOpt = False) -> None:
    """Compile the engine's hot modules with mypyc (needs the dev tools and a C compiler);
    nothing to do when the build matches the sources."""
    from qunyun import native

    try:
        result = native.build()
    except ImportError as exc:
        fail(f"mypyc is not installed ({exc}): pip install -e '.[dev]'")
    except Exception as exc:  # a compiler error: the plain modules keep working
        fail(f"compiling the engine failed: {type(exc).__name__}: {exc}")
    _native_report(result, as_json)
    if not result.active:
        raise typer.Exit(1)


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
        console.print(f"created {actor.username} ({actor.role.value})")


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
    table = Table("id", "username", "role", "language", "last login")
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
        fail("--disable and --enable: choose one")
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
        state = "active" if row["active"] else "disabled"
        console.print(f"{row['username']}: {row['role']}, {state}")


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
    table = Table("id", "username", "label", "created", "expires", "state")
    for r in rows:
        state = "live" if r["live"] else "revoked" if r["revoked_at"] else "expired"
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
        console.print(f"token {token_id} revoked")


# --- ingest -----------------------------------------------------------------------------

@app.command("ingest")
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
        fail(f"{path}: no such file", EXIT_BAD_INPUT)
    totals: dict[str, Any] = {"file": str(path), "lines": 0, "events": 0, "duplicates": 0,
                              "skipped": {}, "outbox": 0}
    with runtime() as rt:
        adapter = rt.adapters.get(platform)
        if adapter is None:
            fail(f"no adapter for platform {platform!r}", EXIT_BAD_INPUT)
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
                    fail(f"{path}:{lineno}: {exc} (nothing was imported)", EXIT_BAD_INPUT)
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
        console.print(f"{totals['events']} events from {totals['lines']} lines "
                      f"({totals['duplicates']} already known, skipped {totals['skipped']}), "
                      f"{totals['outbox']} actions queued")


# --- import -----------------------------------------------------------------------------

TOTAL_KEYS = ("new_members", "messages", "duplicate_messages", "joins",
              "leaves", "kicks", "renames", "recalls", "unparsed_notices", "skipped")


@app.command("import")
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

    from qunyun.adapters.storage.tables import utcnow
    from qunyun.services.imports import FORMATS, ImportFailed, do_import_file

    if fmt != "auto" and fmt not in FORMATS:
        fail(f"--format: auto or one of {', '.join(FORMATS)}", EXIT_BAD_INPUT)
    if on_error not in ("fail", "skip"):
        fail("--on-error: fail or skip", EXIT_BAD_INPUT)
    try:
        log_day = date.fromisoformat(day) if day else None
    except ValueError:
        fail(f"--date {day!r}: {say('cli.bad_date')}", EXIT_BAD_INPUT)
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
                    now=utcnow(), progress=partial(bar.advance, task), rule_clock=rt.clock(),
                    day=log_day)
            except ImportFailed as exc:
                totals["errors"].append(exc.error)
                if as_json:
                    emit_json(totals)
                fail(f"{exc} (nothing of this file was imported)", EXIT_BAD_INPUT)
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
        f"{len(paths)} file(s): {totals['messages']} messages "
        f"({totals['duplicate_messages']} already there), {totals['members']} members "
        f"({totals['new_members']} new) in {totals['groups']} group(s); joins "
        f"{totals['joins']}, leaves {totals['leaves']}, removals {totals['kicks']}, renames "
        f"{totals['renames']}, recalls {totals['recalls']}; {totals['skipped']} rows skipped")
    for error in totals["errors"][:20]:
        err.print(f"  {error['file']}:{error['line']}: {error['reason']}", highlight=False)
    for unsure in totals.get("ambiguous_names", [])[:20]:
        err.print(f"  {unsure['file']}:{unsure['line']}: the names {unsure['names']!r} read two "
                  "ways (a name with 、 in it, or several people); check the members",
                  highlight=False)


@app.command("import-snapshot")
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
        fail(f"--at: an ISO time like 2026-11-20T21:00, not {at!r}", EXIT_BAD_INPUT)
    if taken.tzinfo is None:
        taken = taken.replace(tzinfo=s.tz)
    with runtime(s) as rt:
        try:
            report = do_import_snapshot(rt.uow, path, at=taken, fmt=fmt, platform=platform)
        except ImportFailed as exc:
            fail(f"{exc} (nothing was imported)", EXIT_BAD_INPUT)
    if as_json:
        emit_json(report.__dict__)
    else:
        console.print(f"{report.groups} group(s), {report.listed} listed: "
                      f"{report.left_derived} left since the last list, "
                      f"{report.joined_implied} present without a recorded join")


# --- reports ----------------------------------------------------------------------------

report_app = typer.Typer(help="Reports", no_args_is_help=True)
app.add_typer(report_app, name="report")
analytics_app = typer.Typer(help="The analytics mirror: a DuckDB copy for the cohort report",
                            no_args_is_help=True)
app.add_typer(analytics_app, name="analytics")


@analytics_app.command("refresh")
def analytics_refresh(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Copy the store into the analytics mirror now (the worker does it on its own when
    QUNYUN_ANALYTICS_MIRROR=1)."""
    from qunyun.adapters.storage.mirror import MirrorError
    from qunyun.services.analytics_mirror import do_refresh_mirror

    with session(as_user, write=False) as (rt, _conn, actor):
        try:
            found = do_refresh_mirror(rt, actor=actor)
        except MirrorError as exc:
            fail(str(exc))
    if as_json:
        emit_json(found.as_dict())
        return
    console.print(f"analytics mirror {found.path} refreshed in {found.seconds:.1f} s: "
                  + ", ".join(f"{t} {n:,}" for t, n in found.rows.items()), highlight=False)


@analytics_app.command("status")
def analytics_status(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Whether the mirror is in use, where it is and as of when."""
    from qunyun.services.analytics_mirror import mirror_status

    with session(as_user, write=False) as (rt, _conn, actor):
        data = mirror_status(rt, actor=actor)
    if as_json:
        emit_json(data)
        return
    state = "on" if data["enabled"] else "off (QUNYUN_ANALYTICS_MIRROR=1 turns it on)"
    console.print(f"analytics mirror {state}; {data['path']}: "
                  + (data["error"] or (f"as of {data['refreshed_at']}" if data["refreshed_at"]
                                       else "not built yet")), highlight=False)


@report_app.command("groups")
def report_groups(
    group: Annotated[int | None, typer.Option("--group", help="One group's id")] = None,
    since: Annotated[str | None, typer.Option(help="First day (team time zone)")] = None,
    until: Annotated[str | None, typer.Option(help="Last day (default today)")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Also write a self-contained "
                                              "HTML report to this file")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Group health: activity, speakers, lurkers, joins/leaves, peaks, concentration, score."""
    from qunyun.services.reports import get_group_health
    from qunyun.services.users import SYSTEM
    from qunyun.web.report import render_health_html

    with runtime() as rt, rt.uow.read() as conn:
        reports = get_group_health(conn, actor=SYSTEM, tz=rt.settings.tz, group_id=group,
                                   since=since, until=until)
        if html is not None:
            html.write_text(render_health_html(reports, language=rt.settings.language,
                                               timezone=rt.settings.timezone),
                            encoding="utf-8")
    if as_json:
        emit_json([r.as_dict() for r in reports])
        return
    table = Table("id", "群 group", "platform", "members", "messages", "speakers", "joins",
                  "leaves", "kicks", "ads", "Gini", "score", "alerts")
    for r in reports:
        table.add_row(str(r.id), r.name, r.platform, str(r.members), str(r.messages),
                      str(r.speakers), str(r.joins), str(r.leaves), str(r.kicks),
                      f"{r.ads} ({r.ad_rate:.1%})", f"{r.gini:.2f}", f"{r.score:.0f}",
                      "; ".join(r.alerts))
    console.print(table)
    if html is not None:
        console.print(f"HTML report written to {html}")


@report_app.command("alerts")
def report_alerts(
    check: Annotated[bool, typer.Option("--check/--no-check",
                                        help="Check the groups now (the worker does it hourly; "
                                             "--no-check only lists, as a viewer may)")]
    = True,
    as_user: AsOpt = None, as_json: JsonOpt = False,
) -> None:
    """Group health alerts: raise new ones as staff tasks (once each), list the latest."""
    from qunyun.services import health

    with session(as_user, write=check) as (rt, conn, actor):
        raised = health.do_raise_alerts(conn, tz=rt.settings.tz, actor=actor) if check else []
        rows = health.list_alerts(conn, actor=actor, limit=50)
    if as_json:
        emit_json({"raised": raised, "alerts": rows})
        return
    table = Table(*(say(k) for k in ("health.alert_when", "health.alert_group",
                                     "health.alert_text", "health.alert_task")))
    for r in rows:
        table.add_row(r["raised_at"].astimezone(rt.settings.tz).strftime("%Y-%m-%d %H:%M"),
                      r["group_name"], r["text"],
                      say(f"status.{r['task_status']}") if r["task_status"] else "")
    console.print(table)
    console.print(say("health.alerts_raised", n=len(raised)))


@report_app.command("cohorts")
def report_cohorts(
    series: Annotated[str | None, typer.Option(help="Series code (default: every issue)")]
    = None,
    issue: Annotated[str | None, typer.Option(help="Show one issue in the table")] = None,
    after_days: Annotated[int, typer.Option("--after-days", help="How long after an issue "
                                            "to look for activity and churn")] = 21,
    period: Annotated[str, typer.Option(help="Lifecycle period: week or month")] = "week",
    as_user: AsOpt = None, as_json: JsonOpt = False,
) -> None:
    """Activity cohorts: source, previous issue, last seen after, renewal, retention, churn."""
    activities_cli.report_cohorts(series, after_days, period, issue, as_user, as_json)


# --- outbox and tasks ---------------------------------------------------------------------

@outbox_app.command("list")
def outbox_list(status: str = "", limit: int = 50, as_json: JsonOpt = False) -> None:
    """Show outbox rows, newest first."""
    from qunyun.services import outbox
    from qunyun.services.users import SYSTEM

    if status and status not in outbox.STATUSES:
        fail(f"--status: one of {', '.join(outbox.STATUSES)}", EXIT_BAD_INPUT)
    with runtime() as rt, rt.uow.read() as conn:
        rows = outbox.list_outbox(conn, actor=SYSTEM, status=status or None, limit=limit)
        counts = outbox.outbox_counts(conn)
    if as_json:
        emit_json({"counts": counts, "rows": rows})
        return
    table = Table("id", "status", "action", "group", "attempts", "error")
    for r in rows:
        table.add_row(str(r["id"]), r["status"], r["action_type"], str(r["group_name"] or ""),
                      str(r["attempts"]), r["last_error"][:60])
    console.print(table)
    console.print(counts)


@outbox_app.command("retry")
def outbox_retry(outbox_id: int) -> None:
    """Give a dead row another round of attempts."""
    from qunyun.adapters.storage.tables import utcnow
    from qunyun.services import outbox
    from qunyun.services.users import SYSTEM

    with runtime() as rt, rt.uow.write() as conn:
        outbox.do_retry(conn, actor=SYSTEM, outbox_id=outbox_id, now=utcnow())
    console.print(f"outbox row {outbox_id} will be retried")


@tasks_app.command("list")
def tasks_list(all_: Annotated[bool, typer.Option("--all")] = False,
               as_json: JsonOpt = False) -> None:
    """Show staff tasks (open ones unless --all)."""
    from qunyun.services import tasks
    from qunyun.services.users import SYSTEM

    with runtime() as rt, rt.uow.read() as conn:
        rows = tasks.list_tasks(conn, actor=SYSTEM, status=None if all_ else "open")
    if as_json:
        emit_json(rows)
        return
    table = Table("id", "status", "what", "why", "group", "member")
    for r in rows:
        table.add_row(str(r["id"]), r["status"], r["title"], r["reason"],
                      str(r["group_name"] or ""), str(r["member_name"] or ""))
    console.print(table)


@tasks_app.command("done")
def tasks_done(task_id: int, outcome: str = "", dismiss: bool = False) -> None:
    """Mark a staff task done (or dismissed)."""
    from qunyun.adapters.storage.tables import utcnow
    from qunyun.services import tasks
    from qunyun.services.users import SYSTEM

    with runtime() as rt, rt.uow.write() as conn:
        tasks.do_complete_task(conn, actor=SYSTEM, task_id=task_id, outcome=outcome,
                               dismiss=dismiss, now=utcnow())
    console.print(f"task {task_id} {'dismissed' if dismiss else 'done'}")


@app.command("status")
def status(as_json: JsonOpt = False) -> None:
    """Figures about the store: outbox, inbound events, tasks, members."""
    from qunyun.services import ingest_stats

    with runtime() as rt, rt.uow.read() as conn:
        figures = ingest_stats.store_figures(conn).__dict__
    if as_json:
        emit_json(figures)
    else:
        console.print(figures)


# --- worker, serve, demo ----------------------------------------------------------------

def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@app.command("worker")
def worker(once: Annotated[bool, typer.Option(help="Run one round and exit")] = False,
           as_json: JsonOpt = False) -> None:
    """Deliver the outbox and fire scheduled jobs until stopped (SIGTERM/Ctrl-C)."""
    stop = threading.Event()
    if not once:  # first, so a stop asked for during start-up is a clean stop
        _stop_on_signals(stop)
    from qunyun.worker import Worker

    with runtime() as rt:
        w = Worker(rt)
        if once:
            tick = w.tick()
            data = {"fired": tick.fired, "recovered": tick.recovered, **tick.stats.__dict__}
            if as_json:
                emit_json(data)
            else:
                console.print(data)
            return
        w.run(stop)


def _serve(rt: Runtime, host: str, port: int, with_worker: bool, workers: int = 1) -> None:
    import uvicorn

    from qunyun.web.app import create_app

    if workers == 1:
        uvicorn.run(create_app(rt, start_worker=with_worker), host=host, port=port,
                    log_level="warning")
        return
    # several processes: each builds its app from the environment; delivery runs once, here
    stop: threading.Event | None = None
    if with_worker:
        from qunyun.worker import start_in_thread

        _, stop = start_in_thread(rt)
    try:
        uvicorn.run("qunyun.web.app:app_from_env", factory=True, host=host, port=port,
                    workers=workers, log_level="warning")
    finally:
        if stop is not None:
            stop.set()


@app.command("serve")
def serve(host: str = "127.0.0.1", port: int = 8000,
          no_worker: Annotated[bool, typer.Option("--no-worker",
                                                  help="Do not deliver in-process")] = False,
          workers: Annotated[int, typer.Option(
              min=1, max=64, help="Web processes (the delivery worker still runs once)")] = 1,
          ) -> None:
    """Serve the dashboard and API (with the delivery worker in-process unless --no-worker)."""
    with runtime() as rt:
        console.print(f"qunyun on http://{host}:{port}  (database "
                      f"{rt.engine.url.render_as_string(hide_password=True)}"
                      f"{f', {workers} processes' if workers > 1 else ''})")
        if workers > 1 and state.db:  # the web processes read the URL from the environment
            os.environ["QUNYUN_DATABASE_URL"] = state.db
        _serve(rt, host, port, not no_worker, workers)


@app.command("demo")
def demo(
    host: str = "127.0.0.1",
    port: int = 8000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Load demo data and exit")] = False,
    seed: int = 7,
    as_json: JsonOpt = False,
) -> None:
    """Migrate, load the demo (6 groups of a home-furnishing launch), create the demo
    admin and serve the dashboard."""
    from qunyun import demo as demo_data

    with runtime(migrate=True) as rt:
        loaded = demo_data.load_demo(rt, seed=seed)
        password_file = Path(rt.settings.data_dir) / "demo_admin_password"
        login = demo_data.ensure_demo_admin(rt, password_file, secrets.token_urlsafe(9))
        info = {"url": f"http://{host}:{port}", "username": login[0], "password": login[1],
                **loaded}
        if as_json:
            emit_json(info)
        else:
            console.rule("群运 qunyun demo")
            console.print(f"打开 / open  [bold]{info['url']}[/bold]")
            console.print(f"用户名 / username  [bold]{login[0]}[/bold]   "
                          f"密码 / password  [bold]{login[1]}[/bold]")
            console.print(f"demo data: {loaded}")
        if not no_serve:
            _serve(rt, host, port, True)
