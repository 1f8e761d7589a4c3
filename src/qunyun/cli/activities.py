"""``qunyun activities …`` (series, issues, enrolment, check-ins, settlement, conversions,
funnel) and ``qunyun report cohorts`` (issue 7). Amounts are typed in yuan; days are the
team's (YYYY-MM-DD)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
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
from qunyun.domain.content import ContentError, parse_assignments
from qunyun.services import activities, conversions, enrolments, settlements
from qunyun.services.members import member_id_by_number

activities_app = typer.Typer(help="Activity series and issues: enrolment, check-ins, refunds, "
                             "deposits and orders, funnel", no_args_is_help=True)

OnErrorOpt = Annotated[str, typer.Option("--on-error", help="fail (default: nothing is "
                                         "imported) or skip (import the good rows)")]
PairsOpt = Annotated[list[str] | None, typer.Option(help="name=count (repeatable)")]


def _pairs(items: list[str] | None, option: str) -> dict[str, str] | None:
    if items is None:
        return None
    try:
        return parse_assignments(items, option)
    except ContentError as exc:
        fail(str(exc), EXIT_BAD_INPUT)


def _fields(**given: Any) -> dict[str, Any]:
    return {k: v for k, v in given.items() if v is not None}


@activities_app.command("series-add")
def series_add(code: str, name: Annotated[str, typer.Option()] = "",
               description: Annotated[str, typer.Option()] = "", as_user: AsOpt = None,
               as_json: JsonOpt = False) -> None:
    """Create a series (X, Y, Z)."""
    with session(as_user, write=True) as (_, conn, actor):
        new_id = activities.do_create_series(conn, actor=actor, code=code, name=name,
                                             description=description)
    done(as_json, {"id": new_id, "code": code}, say("series {code} created (id {new_id})",
                                                    code=code, new_id=new_id))


@activities_app.command("add")
def add(series: str,
        start: Annotated[str, typer.Option("--start", help="First day")],
        end: Annotated[str, typer.Option("--end", help="Last day")],
        opens: Annotated[str | None, typer.Option("--opens", help="Sign-up opens (default: "
                                                  "14 days before the start)")] = None,
        name: Annotated[str, typer.Option()] = "",
        code: Annotated[str | None, typer.Option(help="Default: series code + number")] = None,
        capacity: Annotated[int, typer.Option(help="0 = no limit")] = 0,
        price: Annotated[str | None, typer.Option(help="Sign-up fee, yuan")] = None,
        deposit: Annotated[str | None, typer.Option(help="Deposit, yuan")] = None,
        tiers: Annotated[str, typer.Option(help="Refund tiers, check-ins:percent, "
                                           "e.g. 21:100,15:50")] = "",
        complete: Annotated[int, typer.Option(help="Check-ins that count as completing "
                                              "(default: the full-refund tier)")] = 0,
        group: Annotated[list[int] | None, typer.Option("--group", help="Group id "
                                                        "(repeatable)")] = None,
        reach: PairsOpt = None, target: PairsOpt = None,
        as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Add an issue to a series (X3 after X2)."""
    with session(as_user, write=True) as (_, conn, actor):
        new_id = activities.do_create_activity(
            conn, actor=actor, series=series, starts_on=start, ends_on=end, opens_on=opens,
            name=name, code=code, capacity=capacity, group_ids=group or [],
            refund_tiers=tiers, complete_checkins=complete,
            **_fields(price_fen=activities.fen_of(price, "--price"),
                      deposit_fen=activities.fen_of(deposit, "--deposit"),
                      reach=_pairs(reach, "--reach"), targets=_pairs(target, "--target")))
        row = activities.access_activity(conn, actor=actor, ref=new_id)
    done(as_json, row, say("{code} created (id {new_id})", code=row['code'], new_id=new_id))


@activities_app.command("edit")
def edit(activity: str,
         state: Annotated[str | None, typer.Option(help="planned, open, running, ended, "
                                                   "settled")] = None,
         name: Annotated[str | None, typer.Option()] = None,
         start: Annotated[str | None, typer.Option("--start")] = None,
         end: Annotated[str | None, typer.Option("--end")] = None,
         opens: Annotated[str | None, typer.Option("--opens")] = None,
         capacity: Annotated[int | None, typer.Option()] = None,
         price: Annotated[str | None, typer.Option()] = None,
         deposit: Annotated[str | None, typer.Option()] = None,
         tiers: Annotated[str | None, typer.Option()] = None,
         complete: Annotated[int | None, typer.Option()] = None,
         group: Annotated[list[int] | None, typer.Option("--group", help="Replace the groups "
                                                         "(repeatable)")] = None,
         reach: PairsOpt = None, target: PairsOpt = None,
         as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Change an issue: days, money, tiers, groups, reach per channel, funnel targets."""
    with session(as_user, write=True) as (_, conn, actor):
        changes = _fields(
            state=state, name=name, starts_on=start, ends_on=end, opens_on=opens,
            capacity=capacity, price_fen=activities.fen_of(price, "--price"),
            deposit_fen=activities.fen_of(deposit, "--deposit"), refund_tiers=tiers,
            complete_checkins=complete, reach=_pairs(reach, "--reach"),
            targets=_pairs(target, "--target"))
        ref = activities.access_activity(conn, actor=actor, ref=activity)["id"]
        row = activities.do_update_activity(conn, actor=actor, activity_id=ref, changes=changes,
                                            group_ids=group)
    done(as_json, row, say("{code} updated", code=row['code']))


@activities_app.command("list")
def list_(series: Annotated[str | None, typer.Option()] = None, as_user: AsOpt = None,
          as_json: JsonOpt = False) -> None:
    """Issues in time order with sign-ups, deposits, refunds, GMV and cost."""
    with session(as_user, write=False) as (_, conn, actor):
        rows = activities.list_activities(conn, actor=actor, series=series)
    if as_json:
        emit_json(rows)
        return
    table = Table(say("code"), say("name"), say("days"), say("state"), say("enrolled"),
                  say("deposits"), say("refunds"), "GMV", say("cost"))
    for r in rows:
        cap = f"/{r['capacity']}" if r["capacity"] else ""
        table.add_row(r["code"], r["name"], f"{r['starts_on']} – {r['ends_on']}", r["state"],
                      f"{r['enrolled']}{cap}", f"{r['deposits']:.2f}", f"{r['refunds']:.2f}",
                      f"{r['gmv']:.2f}", f"{r['cost']:.2f}")
    console.print(table)


@activities_app.command("show")
def show(activity: str, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """One issue with its money summary."""
    with session(as_user, write=False) as (_, conn, actor):
        row = activities.access_activity(conn, actor=actor, ref=activity)
        money = settlements.money(conn, actor=actor, activity_id=row["id"])
    if as_json:
        emit_json({**row, "money": money})
        return
    console.print(say("[bold]{code}[/bold] {name}  {starts_on} – {ends_on}  ({state}), groups "
                      "{group_ids}", code=row['code'], name=row['name'],
                      starts_on=row['starts_on'], ends_on=row['ends_on'],
                      state=row['state'], group_ids=row['group_ids']))
    console.print(say("报名 {enrolled} · 押金 {deposits:.2f} · 退款 {refunds:.2f} · "
                      "GMV {gmv:.2f} · 成本 {cost:.2f} · 毛利 {margin:.2f}",
                      enrolled=money['enrolled'],
                      deposits=money['deposits'], refunds=money['refunds'],
                      gmv=money['gmv'], cost=money['cost'],
                      margin=money['margin']), highlight=False)


@activities_app.command("enrol")
def enrol(activity: str, member: Annotated[str, typer.Option(help="Member number")],
          channel: Annotated[str, typer.Option()] = "",
          deposit: Annotated[str | None, typer.Option(help="Paid deposit, yuan (default: "
                                                      "the issue's)")] = None,
          as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Enrol a member (blacklisted members are refused with the reason)."""
    with session(as_user, write=True) as (_, conn, actor):
        data = enrolments.do_enrol(conn, actor=actor, activity_id=activity,
                                   member_id=member_id_by_number(conn, member), source="cli",
                                   channel=channel,
                                   deposit_fen=activities.fen_of(deposit, "--deposit"))
    done(as_json, data, say("member {member} enrolled in {activity}", member=member,
                            activity=activity))


@activities_app.command("cancel")
def cancel(activity: str, member: Annotated[str, typer.Option(help="Member number")],
           as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Cancel a member's enrolment."""
    with session(as_user, write=True) as (_, conn, actor):
        enrolments.do_cancel_enrolment(conn, actor=actor, activity_id=activity,
                                       member_id=member_id_by_number(conn, member))
    done(as_json, {"cancelled": True}, say("enrolment of {member} in {activity} cancelled",
                                           member=member, activity=activity))


def _import_summary(report: dict[str, Any], keys: tuple[str, ...]) -> str:
    parts = [f"{k} {report[k] if not isinstance(report[k], list) else len(report[k])}"
             for k in keys]
    lines = [f"{report['file']}: " + ", ".join(parts)]
    lines += [f"  line {r['line']}: refused: {r['reason']}" for r in report.get("refused", [])]
    lines += [f"  line {e['line']}: skipped: {e['reason']}" for e in report["errors"]]
    return "\n".join(lines)


@activities_app.command("import-enrolments")
def import_enrolments(activity: str, path: Path,
                      channel: Annotated[str, typer.Option(help="Channel for rows without "
                                                           "one")] = "",
                      on_error: OnErrorOpt = "fail", as_user: AsOpt = None,
                      as_json: JsonOpt = False) -> None:
    """Sign-ups from a form tool's CSV (学号/wxid/phone, 提交时间, 押金, 渠道)."""
    with session(as_user, write=True) as (rt, conn, actor):
        report = enrolments.do_import_enrolments(conn, actor=actor, activity_id=activity,
                                                 path=path, tz=rt.settings.tz,
                                                 on_error=on_error, channel=channel)
    done(as_json, report, _import_summary(report, ("rows", "enrolled", "already", "refused")))


@activities_app.command("import-checkins")
def import_checkins(activity: str, path: Path, on_error: OnErrorOpt = "fail",
                    as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Check-ins kept elsewhere (学号 + 打卡日期), one row per member and day."""
    with session(as_user, write=True) as (rt, conn, actor):
        report = enrolments.do_import_checkins(conn, actor=actor, activity_id=activity,
                                               path=path, tz=rt.settings.tz, on_error=on_error)
    done(as_json, report, _import_summary(report, ("rows", "checkins", "already")))


@activities_app.command("settle")
def settle(activity: str,
           dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, change nothing")]
           = False,
           csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the refund list "
                                                        "for finance")] = None,
           as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Count check-ins, fix refunds and completion; the issue becomes settled."""
    with session(as_user, write=not dry_run) as (_, conn, actor):
        plan = (settlements.settlement(conn, actor=actor, activity_id=activity) if dry_run
                else settlements.do_settle(conn, actor=actor, activity_id=activity))
    if csv_out is not None:
        csv_out.write_text(settlements.settlement_csv(plan), encoding="utf-8")
    if as_json:
        emit_json(plan)
        return
    table = Table(say("number"), say("name"), say("deposit"), say("check-ins"), "%",
                  say("refund"), say("completed"))
    for r in plan["rows"]:
        table.add_row(str(r["number"]), r["name"], f"{r['deposit']:.2f}", str(r["checkins"]),
                      f"{r['percent']:g}", f"{r['refund']:.2f}", "✓" if r["completed"] else "")
    console.print(table)
    figures = {k: plan[k] for k in ("code", "refunds", "deposits", "completed", "participants")}
    console.print(say("{code} would refund {refunds:.2f} of {deposits:.2f}; "
                      "{completed}/{participants} completed", **figures) if dry_run else
                  say("{code} settled: refunds {refunds:.2f} of {deposits:.2f}; "
                      "{completed}/{participants} completed", **figures), highlight=False)
    if csv_out is not None:
        console.print(say("refund list written to {csv_out}", csv_out=csv_out))


@activities_app.command("conversion")
def conversion(kind: Annotated[str, typer.Option(help="deposit (付定), order or cost")],
               amount: Annotated[str, typer.Option(help="Yuan")],
               activity: Annotated[str | None, typer.Option()] = None,
               member: Annotated[str | None, typer.Option(help="Member number")] = None,
               group: Annotated[int | None, typer.Option()] = None,
               ref: Annotated[str | None, typer.Option(help="Order number (unique)")] = None,
               channel: Annotated[str, typer.Option()] = "",
               note: Annotated[str, typer.Option()] = "",
               as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Record an intention deposit, an order or a cost."""
    with session(as_user, write=True) as (_, conn, actor):
        new_id = conversions.do_record_conversion(
            conn, actor=actor, kind=kind, amount_fen=activities.fen_of(amount, "--amount") or 0,
            activity_id=activity, group_id=group, channel=channel, note=note,
            external_ref=ref, source="cli",
            member_id=member_id_by_number(conn, member) if member else None)
    done(as_json, {"id": new_id}, say("{kind} recorded (id {new_id})", kind=kind, new_id=new_id))


@activities_app.command("import-conversions")
def import_conversions(path: Path,
                       activity: Annotated[str | None, typer.Option(help="For rows without "
                                                                    "an activity column")]
                       = None,
                       kind: Annotated[str | None, typer.Option(help="For files without a "
                                                                "kind column")] = None,
                       on_error: OnErrorOpt = "fail", as_user: AsOpt = None,
                       as_json: JsonOpt = False) -> None:
    """Deposits, orders and costs from CSV (订单号 makes a second import a no-op)."""
    with session(as_user, write=True) as (rt, conn, actor):
        report = conversions.do_import_conversions(conn, actor=actor, path=path,
                                                  tz=rt.settings.tz, activity_id=activity,
                                                  kind=kind, on_error=on_error)
    done(as_json, report, _import_summary(report, ("rows", "recorded", "already", "amount")))


@activities_app.command("funnel")
def funnel_cmd(activity: str, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """reached → joined → spoke → enrolled → deposit → purchase, against the targets."""
    from qunyun.services.reports import get_funnel

    with session(as_user, write=False) as (rt, conn, actor):
        data = get_funnel(conn, actor=actor, tz=rt.settings.tz, activity=activity)
    if as_json:
        emit_json(data)
        return
    table = Table(say("step"), say("count"), say("from previous"), say("target"), say("vs target"))
    for s in data["steps"]:
        table.add_row(s["step"], str(s["count"]), _pct(s["from_previous"]),
                      str(s["target"] or ""), _pct(s["vs_target"]))
    console.print(table)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def report_cohorts(series: str | None, after_days: int, period: str, issue: str | None,
                   as_user: str | None, as_json: bool, now: datetime | None = None) -> None:
    """Body of ``qunyun report cohorts`` (registered in main with the other reports)."""
    from qunyun.services.reports import read_cohorts

    with session(as_user, write=False) as (rt, _conn, actor):
        data = read_cohorts(rt.uow, rt.mirror, actor=actor, tz=rt.settings.tz, series=series,
                            after_days=after_days, period=period, now=now)
    if as_json:
        emit_json(data)
        return
    table = Table(say("issue"), say("people"), say("new"), say("returning"), say("source"),
                  say("renewal → next"), say("renewal any"), say("active after"),
                  say("churn (observed)"))
    for i in data["issues"]:
        if issue and i["code"] != issue:
            continue
        after = i["after"] or {}
        table.add_row(i["code"], str(i["participants"]), str(i["new"]), str(i["returning"]),
                      ", ".join(f"{k} {v}" for k, v in i["source"].items()),
                      _pct(i["renewal_next"]), _pct(i["renewal_any"]),
                      _pct(after.get("active_rate")), _pct(after.get("churn_observed_rate")))
    console.print(table)
