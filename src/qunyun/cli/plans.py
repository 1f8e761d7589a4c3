"""``qunyun plan …``: campaign planning (F28). ``plan calc`` works seed 000's arithmetic
both ways: from an audience to members, groups, deposits and purchases, or back from a
target to the reach, groups and working days it needs; rates not given come from the
team's past activities, else from the seed's defaults, and the answer says which."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from qunyun.cli.common import (
    EXIT_BAD_INPUT,
    AsOpt,
    JsonOpt,
    acting,
    console,
    done,
    emit_json,
    fail,
    runtime,
    say,
    session,
)
from qunyun.domain.planning import METRICS
from qunyun.services import plan_rehearsal, planning, plans

plan_app = typer.Typer(help="Campaign planning: the goal calculator, plans, plan versus actual",
                       no_args_is_help=True)

Num = Annotated[int | None, typer.Option()]
Rate = Annotated[float | None, typer.Option(help="0–1; default: the team's history or the "
                                                 "seed's")]


@plan_app.command("calc")
def plan_calc(
        audience: Annotated[int | None, typer.Option(help="People reached (forward)")] = None,
        target_deposits: Annotated[int | None, typer.Option(
            "--target-deposits", help="Deposits wanted (backward)")] = None,
        target_purchases: Annotated[int | None, typer.Option("--target-purchases")] = None,
        target_gmv: Annotated[float | None, typer.Option("--target-gmv")] = None,
        price: Annotated[float | None, typer.Option(help="Per purchase, for GMV")] = None,
        join_rate: Rate = None, deposit_rate: Rate = None, purchase_rate: Rate = None,
        capacity: Annotated[int, typer.Option(help="Members a group holds")] = 100,
        fill: Annotated[float, typer.Option(help="How full a group is filled, 0.1–1")] = 0.9,
        staff: Num = None,
        contacts_per_day: Annotated[int | None, typer.Option(
            "--contacts-per-day", help="Each staff member, a working day")] = None,
        as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Reach, members, groups, deposits, purchases (and working days with --staff)."""
    values = {"audience": audience, "target_deposits": target_deposits,
              "target_purchases": target_purchases, "target_gmv": target_gmv,
              "price": price, "join_rate": join_rate, "deposit_rate": deposit_rate,
              "purchase_rate": purchase_rate, "capacity": capacity, "fill": fill,
              "staff": staff, "contacts_per_day": contacts_per_day}
    with session(as_user, write=False) as (rt, conn, actor):
        plan = planning.do_calculate(conn, actor=actor, values=values, tz=rt.settings.tz,
                                     now=rt.now())
    if as_json:
        emit_json(plan)
        return
    for key in ("reach", "members", "groups", "deposits", "purchases", "gmv", "days"):
        if plan[key] is not None:
            console.print(f"{say(f'plan.{key}')}: {plan[key]:,}", highlight=False)
    for name, rate in plan["rates"].items():
        console.print(say("plan.rate_line", rate=say(f"plan.{name}"),
                          value=f"{rate['value']:.1%}",
                          source=say(f"plan.source.{rate['source']}")),
                      highlight=False, markup=False)


def _goal(target_deposits: int | None, audience: int | None, join_rate: float | None,
          deposit_rate: float | None, purchase_rate: float | None) -> dict[str, Any] | None:
    values = {k: v for k, v in {"target_deposits": target_deposits, "audience": audience,
                                "join_rate": join_rate, "deposit_rate": deposit_rate,
                                "purchase_rate": purchase_rate}.items() if v is not None}
    return values if ("target_deposits" in values or "audience" in values) else None


@plan_app.command("create")
def plan_create(
        name: Annotated[str, typer.Option("--name")],
        starts_on: Annotated[str, typer.Option("--from", help="First day, 2026-12-01")],
        ends_on: Annotated[str, typer.Option("--to", help="Last day")],
        activity: Annotated[str | None, typer.Option(
            help="The activity whose enrolments and sales count (id or code)")] = None,
        groups: Annotated[str, typer.Option(help="Group ids, 1,2,3 (default: the "
                                                 "activity's)")] = "",
        target_deposits: Annotated[int | None, typer.Option("--target-deposits")] = None,
        audience: Annotated[int | None, typer.Option()] = None,
        join_rate: Rate = None, deposit_rate: Rate = None, purchase_rate: Rate = None,
        margin: Annotated[float, typer.Option(
            help="A finished day this far under target is flagged (0.2 = 20 %)")] = 0.2,
        as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """A plan; with a goal (--target-deposits or --audience) the daily targets for joins,
    deposits and purchases are spread over its days."""
    ids = [int(g) for g in groups.replace("，", ",").split(",") if g.strip().isdigit()]
    with session(as_user, write=True) as (rt, conn, actor):
        plan = plans.do_create_plan(
            conn, actor=actor, name=name, starts_on=starts_on, ends_on=ends_on,
            activity=activity, group_ids=ids,
            goal=_goal(target_deposits, audience, join_rate, deposit_rate, purchase_rate),
            margin=margin, tz=rt.settings.tz, now=rt.now())
    done(as_json, plan, say("plan {id} {name} created", id=plan["id"], name=plan["name"]))


@plan_app.command("list")
def plan_list(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    with session(as_user, write=False) as (_rt, conn, actor):
        rows = plans.list_plans(conn, actor=actor)
    if as_json:
        emit_json(rows)
        return
    for p in rows:
        console.print(f"#{p['id']} {p['name']}  {p['starts_on']} → {p['ends_on']}",
                      highlight=False, markup=False)


@plan_app.command("show")
def plan_show(plan: str, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """A plan: dates, stages, target totals."""
    with session(as_user, write=False) as (_rt, conn, actor):
        row = plans.access_plan(conn, actor=actor, plan_id=plans.find_plan(
            conn, actor=actor, ref=plan))
    if as_json:
        emit_json(row)
        return
    console.print(f"#{row['id']} {row['name']}  {row['starts_on']} → {row['ends_on']}",
                  highlight=False, markup=False)
    for s in row["stages"]:
        kind = say(f"plan.stage.{s['kind']}")
        console.print(f"  {kind} {s['name']}  {s['starts_on']} → {s['ends_on']}",
                      highlight=False, markup=False)
    for metric, total in row["target_totals"].items():
        if total:
            console.print(f"  {say(f'plan.metric.{metric}')}: {total:,}", highlight=False)
    for r in row["roles"]:
        where = f" · {r['group_name']}" if r["group_name"] else ""
        role = r["role"]
        console.print(f"  {say(f'plan.role.{role}')} {r['username']}{where}",
                      highlight=False, markup=False)
    for i in row["checklist"]:
        status = i["status"]
        state = say(f"plan.item_status.{status}")
        console.print(f"  [{state}] #{i['id']} {i['title']} {i['owner'] or ''} "
                      f"{i['due_on'] or ''}", highlight=False, markup=False)
    money = row["budget_totals"]
    if row["budget"]:
        console.print(say("plan.budget_line", planned=money["planned_fen"] / 100,
                          actual=money["actual_fen"] / 100), highlight=False, markup=False)


@plan_app.command("edit")
def plan_edit(plan: str,
              name: Annotated[str | None, typer.Option("--name")] = None,
              starts_on: Annotated[str | None, typer.Option("--from")] = None,
              ends_on: Annotated[str | None, typer.Option("--to")] = None,
              margin: Annotated[float | None, typer.Option()] = None,
              activity: Annotated[str | None, typer.Option()] = None,
              as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    changes = {k: v for k, v in {"name": name, "starts_on": starts_on, "ends_on": ends_on,
                                 "margin": margin, "activity": activity}.items()
               if v is not None}
    with session(as_user, write=True) as (rt, conn, actor):
        row = plans.do_edit_plan(conn, actor=actor, plan_id=plans.find_plan(
            conn, actor=actor, ref=plan), changes=changes, now=rt.now())
    done(as_json, row, say("plan {id} saved", id=row["id"]))


@plan_app.command("stage")
def plan_stage(plan: str,
               kind: Annotated[str, typer.Option(
                   help="warmup, recruiting, launch, follow_up, other")],
               starts_on: Annotated[str, typer.Option("--from")],
               ends_on: Annotated[str, typer.Option("--to")],
               name: Annotated[str, typer.Option("--name")] = "",
               as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Add a stage (a bar on the plan's timeline)."""
    with session(as_user, write=True) as (rt, conn, actor):
        row = plans.do_add_stage(conn, actor=actor, plan_id=plans.find_plan(
            conn, actor=actor, ref=plan), kind=kind, name=name, starts_on=starts_on,
            ends_on=ends_on, now=rt.now())
    done(as_json, row, say("plan {id} saved", id=row["id"]))


@plan_app.command("target")
def plan_target(plan: str,
                metric: Annotated[str, typer.Option(
                    help="joined, active, enrolled, deposit, purchase")],
                total: Annotated[int | None, typer.Option(
                    help="Spread over --from..--to (the plan's days by default)")] = None,
                day: Annotated[str | None, typer.Option(help="One day, with --value")] = None,
                value: Annotated[int | None, typer.Option()] = None,
                starts_on: Annotated[str | None, typer.Option("--from")] = None,
                ends_on: Annotated[str | None, typer.Option("--to")] = None,
                as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Set a metric's daily targets."""
    with session(as_user, write=True) as (rt, conn, actor):
        row = plans.do_set_targets(conn, actor=actor, plan_id=plans.find_plan(
            conn, actor=actor, ref=plan), metric=metric, total=total, value=value, day=day,
            starts_on=starts_on, ends_on=ends_on, now=rt.now())
    done(as_json, row, say("plan {id} saved", id=row["id"]))


@plan_app.command("actual")
def plan_actual(plan: str, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Plan versus actual per day; the short days marked."""
    with session(as_user, write=False) as (rt, conn, actor):
        report = plans.plan_actual(conn, actor=actor, plan_id=plans.find_plan(
            conn, actor=actor, ref=plan), tz=rt.settings.tz, now=rt.now())
    if as_json:
        emit_json(report)
        return
    table = Table(say("plan.day"), *(say(f"plan.metric.{m}") for m in METRICS))
    for d in report["days"]:
        cells = []
        for m in METRICS:
            cell = d[m]
            text = f"{cell['actual']}" + (f"/{cell['target']}" if cell["target"] is not None
                                          else "")
            cells.append(("⚠ " if cell["short"] else "") + text)
        table.add_row(d["day"], *cells)
    console.print(table, highlight=False)
    console.print(say("plan.short_days", n=len(report["short"])), highlight=False)


@plan_app.command("role")
def plan_role(plan: str, user: Annotated[str, typer.Option("--user", help="A staff username")],
              role: Annotated[str, typer.Option(
                  help="pm, presenter, kol, atmosphere, advisor")],
              group: Annotated[int | None, typer.Option(help="In one group only")] = None,
              remove: Annotated[bool, typer.Option("--remove")] = False,
              as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Who does what in the plan (the PMs hear of its short days)."""
    with session(as_user, write=True) as (rt, conn, actor):
        row = plans.do_set_role(conn, actor=actor, plan_id=plans.find_plan(
            conn, actor=actor, ref=plan), username=user, role=role, group_id=group,
            remove=remove, now=rt.now())
    done(as_json, row, say("plan {id} saved", id=row["id"]))


@plan_app.command("task")
def plan_task(plan: str,
              title: Annotated[str | None, typer.Option(help="A new checklist line")] = None,
              kind: Annotated[str, typer.Option(
                  help="poster, script, gift, product, other")] = "other",
              owner: Annotated[str | None, typer.Option(help="A staff username")] = None,
              due: Annotated[str | None, typer.Option(help="2026-12-01")] = None,
              item: Annotated[int | None, typer.Option(help="An existing line, with "
                                                            "--status")] = None,
              status: Annotated[str | None, typer.Option(help="todo, doing, done")] = None,
              as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """The materials checklist: add a line, or move one along (--item N --status done)."""
    with session(as_user, write=True) as (rt, conn, actor):
        plan_id = plans.find_plan(conn, actor=actor, ref=plan)
        if item is not None:
            row = plans.do_set_item_status(conn, actor=actor, plan_id=plan_id, item_id=item,
                                           status=status or "", now=rt.now())
        else:
            row = plans.do_add_item(conn, actor=actor, plan_id=plan_id, kind=kind,
                                    title=title or "", owner=owner, due_on=due, now=rt.now())
    done(as_json, row, say("plan {id} saved", id=row["id"]))


@plan_app.command("budget")
def plan_budget(plan: str,
                title: Annotated[str | None, typer.Option(help="A new budget line")] = None,
                category: Annotated[str, typer.Option(
                    help="gifts, red_packets, rewards, ads, other")] = "other",
                planned: Annotated[str, typer.Option(help="Yuan")] = "0",
                actual: Annotated[str | None, typer.Option(help="Yuan spent")] = None,
                line: Annotated[int | None, typer.Option(help="An existing line, with "
                                                            "--actual")] = None,
                as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """The budget: add a line (planned, maybe actual), or record what a line cost."""
    with session(as_user, write=True) as (rt, conn, actor):
        plan_id = plans.find_plan(conn, actor=actor, ref=plan)
        if line is not None:
            row = plans.do_set_budget_actual(conn, actor=actor, plan_id=plan_id, line_id=line,
                                             actual=actual or "0", now=rt.now())
        else:
            row = plans.do_add_budget(conn, actor=actor, plan_id=plan_id, category=category,
                                      title=title or "", planned=planned,
                                      actual=actual or "0", now=rt.now())
    done(as_json, row, say("plan {id} saved", id=row["id"]))


@plan_app.command("check")
def plan_check(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Raise the plans' short days to their PMs now (the worker does this hourly)."""
    with session(as_user, write=True) as (rt, conn, _actor):
        made = plans.raise_variance(conn, tz=rt.settings.tz, now=rt.now())
    done(as_json, {"tasks": made}, say("{n} tasks for short days", n=len(made)))


@plan_app.command("retro")
def plan_retro(plan: str, stage: Annotated[int, typer.Option(help="The stage's id")],
               worked: Annotated[str, typer.Option(help="What worked")] = "",
               did_not: Annotated[str, typer.Option("--not", help="What did not")] = "",
               change: Annotated[str, typer.Option(help="What to change next time")] = "",
               as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """A stage's retro notes."""
    with session(as_user, write=True) as (rt, conn, actor):
        row = plans.do_stage_retro(conn, actor=actor, plan_id=plans.find_plan(
            conn, actor=actor, ref=plan), stage_id=stage, worked=worked, did_not=did_not,
            change=change, now=rt.now())
    done(as_json, row, say("plan {id} saved", id=row["id"]))


@plan_app.command("problem")
def plan_problem(plan: str,
                 issue: Annotated[str | None, typer.Option(help="A new problem")] = None,
                 owner: Annotated[str | None, typer.Option(help="A staff username")] = None,
                 close: Annotated[int | None, typer.Option(
                     help="Close problem N (with --resolution)")] = None,
                 resolution: Annotated[str, typer.Option()] = "",
                 as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """The problem log: add one, or close one with how it was resolved."""
    with session(as_user, write=True) as (rt, conn, actor):
        plan_id = plans.find_plan(conn, actor=actor, ref=plan)
        if close is not None:
            row = plans.do_close_problem(conn, actor=actor, plan_id=plan_id, problem_id=close,
                                         resolution=resolution, now=rt.now())
        else:
            row = plans.do_add_problem(conn, actor=actor, plan_id=plan_id, issue=issue or "",
                                       owner=owner, now=rt.now())
    done(as_json, row, say("plan {id} saved", id=row["id"]))


@plan_app.command("report")
def plan_report(plan: str, out: Annotated[Path, typer.Option(
                    "--out", help="FILE.html, FILE.png or FILE.pdf")],
                as_user: AsOpt = None) -> None:
    """The closing report (plan against outcome, stages and retros, problems, budget) as
    one HTML file, a picture or a PDF — to print or send to the manager."""
    from qunyun.web.report import render_plan_html
    from qunyun.web.report_image import plan_pdf, plan_png

    kind = out.suffix.lower()
    if kind not in (".html", ".png", ".pdf"):
        fail(say("--out: a file ending in .html, .png or .pdf"), EXIT_BAD_INPUT)
    with session(as_user, write=False) as (rt, conn, actor):
        report = plans.closing_report(conn, actor=actor, plan_id=plans.find_plan(
            conn, actor=actor, ref=plan), tz=rt.settings.tz, now=rt.now())
        language, timezone = rt.settings.language, rt.settings.timezone
    if kind == ".html":
        out.write_text(render_plan_html(report, language=language, timezone=timezone),
                       encoding="utf-8")
    else:
        out.write_bytes(plan_png(report, language=language) if kind == ".png"
                        else plan_pdf(report, language=language))
    console.print(say("report written to {path}", path=str(out)), highlight=False,
                  markup=False)


@plan_app.command("pushes")
def plan_pushes(plan: str, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """The playbook steps and broadcasts that reach the plan's groups from now to its last
    day — the pushes on the plan's timeline."""
    with session(as_user, write=False) as (rt, conn, actor):
        found = plans.scheduled_pushes(conn, actor=actor, plan_id=plans.find_plan(
            conn, actor=actor, ref=plan), tz=rt.settings.tz, now=rt.now())
    if as_json:
        emit_json(found)
        return
    for x in found:
        source = say(f"plan.push_source.{x['source']}")
        step = f" · {x['step']}" if x["step"] else ""
        console.print(f"{x['day']} {x['time']}  {source} #{x['source_id']} {x['name']}{step}"
                      f" · {say('plan.push_groups', n=x['groups'])}", highlight=False,
                      markup=False)
    if not found:
        console.print(say("plan.no_pushes"), highlight=False, markup=False)


@plan_app.command("rehearse")
def plan_rehearse(plan: str,
                  seed: Annotated[int, typer.Option(help="Same seed, same rehearsal")] = 7,
                  as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Rehearse the plan on the simulator: simulated people join through its channels at
    its rates, talk, pay and answer its pushes (in a database of their own; the team's is
    untouched). Prints the forecast and the simulated days against the targets, the staff
    load, when each group fills and whether the simulated talk looks like real groups'."""
    with runtime() as rt:
        actor = acting(rt, as_user)
        with rt.uow.read() as conn:
            plan_id = plans.find_plan(conn, actor=actor, ref=plan)
        out = plan_rehearsal.do_rehearse_plan(rt.uow, actor=actor, plan_id=plan_id, seed=seed,
                                              settings=rt.settings,
                                              capabilities=rt.capabilities)
    if as_json:
        emit_json(out)
        return
    table = Table(say("plan.day"), say("plan.reached"),
                  *(say(f"plan.metric.{m}") for m in ("joined", "active", "deposit",
                                                      "purchase")),
                  say("rehearsal.tasks"), say("rehearsal.pushes"))
    for d in out["days"]:
        cells = []
        for m in ("joined", "active", "deposit", "purchase"):
            target = d["target"][m]
            mark = "⚠ " if m in d["short"] else ""
            simulated = "—" if d["simulated"][m] is None else d["simulated"][m]
            cells.append(f"{mark}{simulated} ~{d['forecast'][m]:g}"
                         + (f" /{target}" if target is not None else ""))
        table.add_row(d["day"][5:], f"{d['reached']:,}", *cells, str(d["tasks"]),
                      str(d["pushes"]))
    console.print(table, highlight=False)
    console.print(say("rehearsal.legend"), highlight=False, markup=False)
    for g in out["groups"]:
        full = (say("rehearsal.full_on", day=g["full_on"]) if g["full_on"]
                else say("rehearsal.not_full"))
        console.print(say("rehearsal.group_line", name=g["name"], members=g["members"],
                          room=g["room"], full=full), highlight=False, markup=False)
    if out["room"]["groups_short"]:
        console.print(say("rehearsal.room_short", **out["room"]), highlight=False,
                      markup=False)
    console.print(say("rehearsal.staff_line", tasks=out["staff"]["tasks"],
                      most=out["staff"]["most_tasks_in_a_day"],
                      day=out["staff"]["busiest_day"] or "-", pushes=out["staff"]["pushes"]),
                  highlight=False, markup=False)
    r = out["reactions"]
    console.print(say("rehearsal.reactions_line", tired=r["tired_group_days"], left=r["left"],
                      muted=r["muted"]), highlight=False, markup=False)
    for c in out["calibration"]:
        name = c["name"]
        console.print(say("rehearsal.check_line", name=say(f"rehearsal.check.{name}"),
                          value=c["value"], low=c["low"], high=c["high"],
                          verdict=say("rehearsal.ok") if c["ok"] else say("rehearsal.off")),
                      highlight=False, markup=False)
    if not out["money_counted"]:
        console.print(say("rehearsal.no_activity"), highlight=False, markup=False)
    console.print(say("plan.short_days", n=len(out["short"])), highlight=False)
