"""``qunyun plan …``: campaign planning (F28). ``plan calc`` works seed 000's arithmetic
both ways: from an audience to members, groups, deposits and purchases, or back from a
target to the reach, groups and working days it needs; rates not given come from the
team's past activities, else from the seed's defaults, and the answer says which."""

from __future__ import annotations

from typing import Annotated

import typer

from qunyun.cli.common import AsOpt, JsonOpt, console, emit_json, say, session
from qunyun.services import planning

plan_app = typer.Typer(help="Campaign planning: the goal calculator", no_args_is_help=True)

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
