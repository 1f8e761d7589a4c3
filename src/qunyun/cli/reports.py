"""``qunyun report …`` (group health, alerts, cohorts) and ``qunyun analytics …`` (the
analytics mirror)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from qunyun.cli import activities as activities_cli
from qunyun.cli.common import (
    AsOpt,
    JsonOpt,
    console,
    emit_json,
    fail,
    runtime,
    say,
    session,
)
from qunyun.i18n import spoken

# --- reports ----------------------------------------------------------------------------

report_app = typer.Typer(help="Reports", no_args_is_help=True)
analytics_app = typer.Typer(help="The analytics mirror: a DuckDB copy for the cohort report",
                            no_args_is_help=True)


@analytics_app.command("refresh")
def analytics_refresh(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Copy the store into the analytics mirror now (the worker does it on its own when
    QUNYUN_ANALYTICS_MIRROR=1)."""
    from qunyun.adapters.storage.mirror import MirrorError
    from qunyun.services.reports import do_refresh_mirror

    with session(as_user, write=False) as (rt, _conn, actor):
        try:
            found = do_refresh_mirror(rt.engine, rt.mirror, actor=actor)
        except MirrorError as exc:
            fail(str(exc))
    if as_json:
        emit_json(found.as_dict())
        return
    console.print(say("analytics mirror {path} refreshed in {seconds:.1f} s: {rows}",
                      path=found.path, seconds=found.seconds,
                      rows=", ".join(f"{t} {n:,}" for t, n in found.rows.items())),
                  highlight=False)


@analytics_app.command("status")
def analytics_status(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Whether the mirror is in use, where it is and as of when."""
    from qunyun.services.reports import mirror_status

    with session(as_user, write=False) as (rt, _conn, actor):
        data = mirror_status(rt.mirror, actor=actor)
    if as_json:
        emit_json(data)
        return
    state = (say("analytics mirror on") if data["enabled"]
             else say("analytics mirror off (QUNYUN_ANALYTICS_MIRROR=1 turns it on)"))
    when = data["error"] or (say("as of {when}", when=data["refreshed_at"])
                             if data["refreshed_at"] else say("not built yet"))
    console.print(f"{state}; {data['path']}: {when}", highlight=False)


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
    table = Table("id", say("群 group"), say("platform"), say("members"), say("messages"),
                  say("speakers"), say("joins"), say("leaves"), say("kicks"),
                  say("ads"), say("health.gini"), say("score"), say("alerts"))
    for r in reports:
        table.add_row(str(r.id), r.name, say(f"platform.{r.platform}"), str(r.members),
                      str(r.messages),
                      str(r.speakers), str(r.joins), str(r.leaves), str(r.kicks),
                      f"{r.ads} ({r.ad_rate:.1%})", f"{r.gini:.2f}", f"{r.score:.0f}",
                      "; ".join(spoken(a["says"], rt.settings.language)
                                for a in r.alert_items))
    console.print(table)
    if html is not None:
        console.print(say("HTML report written to {html}", html=html))


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
                      r["group_name"], spoken(r["says"], rt.settings.language),
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


@report_app.command("channels")
def report_channels(
    model: Annotated[str, typer.Option(help="first (the member's first join) or last (the "
                                            "latest touch before each outcome)")] = "first",
    by: Annotated[str, typer.Option(help="channel or inviter")] = "channel",
    since: Annotated[str | None, typer.Option(help="Members who first joined from this day")]
    = None,
    until: Annotated[str | None, typer.Option(help="… up to this day (team time zone)")] = None,
    activity: Annotated[str | None, typer.Option(help="Only this issue's outcomes (code)")]
    = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="Also write the table as CSV")]
    = None,
    as_user: AsOpt = None, as_json: JsonOpt = False,
) -> None:
    """Which channel or inviter brought the members who enrolled, paid and purchased."""
    from qunyun.services.channel_report import get_channel_report, table_of
    from qunyun.services.reports import parse_day

    with session(as_user, write=False) as (rt, conn, actor):
        report = get_channel_report(conn, actor=actor, tz=rt.settings.tz, model=model, by=by,
                                    since=parse_day(since, "since"),
                                    until=parse_day(until, "until"), activity=activity)
        language = rt.settings.language
    header, rows = table_of(report.to_json(), language)
    if csv is not None:
        from qunyun.services.spreadsheets import csv_bytes

        csv.write_bytes(csv_bytes(header, rows))
    if as_json:
        emit_json(report.to_json())
        return
    table = Table(*header)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)
    console.print(say(f"report.reading.{report.model}"), highlight=False)
    best = report.winner
    if best:
        console.print(say("report.winner", label=best["label"], n=best["enrolled"]),
                      highlight=False)

