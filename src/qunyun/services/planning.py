"""Campaign planning (F28): the goal calculator with rates from the team's own history.

A rate nobody gives comes from the team's past activities when they hold enough people to
say something (their funnels: joined ÷ reached where reach was entered, deposits ÷ joined,
purchases ÷ deposits), else from seed 000's defaults — and the answer says which, and what
a history rate was counted over. Read-only: nothing is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from qunyun.analytics.funnels import funnel
from qunyun.domain.planning import (
    DEFAULT_CAPACITY,
    DEFAULTS,
    RATES,
    Inputs,
    PlanError,
    Rate,
    calculate,
)
from qunyun.domain.staff import Permission
from qunyun.services.activities import access_activity, list_activities
from qunyun.services.errors import InvalidInput
from qunyun.services.users import Actor

MIN_BASE = 20  # fewer people than this under a history rate say nothing about it
# each rate: (the step counted, the step it is counted over)
HISTORY_STEPS = {"join_rate": ("joined", "reached"), "deposit_rate": ("deposit", "joined"),
                 "purchase_rate": ("purchase", "deposit")}


def history_rates(conn: Connection, *, actor: Actor, tz: ZoneInfo, now: datetime
                  ) -> dict[str, Rate]:
    """The rates the team's past activities (begun before now) show, where enough people
    stand under them; each with what it was counted over."""
    actor.require(Permission.VIEW)
    sums: dict[str, int] = dict.fromkeys(("reached", "joined", "deposit", "purchase"), 0)
    reached_joined = 0  # joins of the activities whose reach was entered
    counted = 0
    for row in list_activities(conn, actor=actor):
        opens = str(row["opens_on"] or "")[:10]  # a date, or its ISO text (SQLite)
        if not opens or opens > now.astimezone(tz).date().isoformat():
            continue
        steps = {s["step"]: s["count"] for s in funnel(
            conn, tz=tz, activity=access_activity(conn, actor=actor, ref=row["id"]),
            now=now)["steps"]}
        counted += 1
        for key in sums:
            sums[key] += int(steps.get(key, 0))
        if steps.get("reached"):
            reached_joined += int(steps.get("joined", 0))
    out: dict[str, Rate] = {}
    for name, (top, base) in HISTORY_STEPS.items():
        over = sums[base]
        hits = reached_joined if name == "join_rate" else sums[top]
        if over >= MIN_BASE and 0 < hits <= over:
            out[name] = Rate(round(hits / over, 4), "history", activities=counted,
                             hits=hits, over=over)
    return out


_INTS = ("audience", "target_deposits", "target_purchases", "capacity", "staff",
         "contacts_per_day")
_FLOATS = ("target_gmv", "price", "fill", *RATES)


def _parse(values: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, float]]:
    """The numbers given (blank: not given); a field that is not a number is named."""
    unknown = set(values) - {*_INTS, *_FLOATS}
    if unknown:
        raise InvalidInput("unknown fields: {unknown}", unknown=", ".join(sorted(unknown)))
    ints: dict[str, int] = {}
    floats: dict[str, float] = {}
    for name, value in values.items():
        text = "" if value is None else str(value).strip()
        if not text:
            continue
        try:
            if name in _INTS:
                ints[name] = int(text)
            else:
                number = float(text)
                if number != number or abs(number) > 1e15:  # NaN, infinity
                    raise ValueError(text)
                floats[name] = number
        except ValueError:
            raise InvalidInput("{field}: a number", field=name) from None
    return ints, floats


def do_calculate(conn: Connection, *, actor: Actor, values: Mapping[str, Any], tz: ZoneInfo,
                 now: datetime) -> dict[str, Any]:
    """The calculator's answer for ``values`` (forward from ``audience``, or backward from
    one target), rates given, from history, or defaulted — each labelled."""
    actor.require(Permission.VIEW)
    ints, floats = _parse(values)
    history = (history_rates(conn, actor=actor, tz=tz, now=now)
               if any(r not in floats for r in RATES) else {})
    rates = {name: Rate(floats[name], "given") if name in floats
             else history.get(name) or Rate(DEFAULTS[name], "default") for name in RATES}
    try:
        plan = calculate(Inputs(
            rates=rates, capacity=ints.get("capacity", DEFAULT_CAPACITY),
            fill=floats.get("fill", DEFAULTS["fill"]), audience=ints.get("audience"),
            target_deposits=ints.get("target_deposits"),
            target_purchases=ints.get("target_purchases"),
            target_gmv=floats.get("target_gmv"), price=floats.get("price"),
            staff=ints.get("staff"), contacts_per_day=ints.get("contacts_per_day")))
    except PlanError as exc:
        raise InvalidInput.wrap(exc) from None
    return plan.as_dict()


__all__ = ["MIN_BASE", "do_calculate", "history_rates"]
