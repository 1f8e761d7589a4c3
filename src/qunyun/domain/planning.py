"""Campaign planning's goal calculator (F28, pure): seed 000's arithmetic both ways.

Forward, from an audience: reach × join rate → members; members ÷ (capacity × fill) →
groups; members × deposit rate → deposits; deposits × purchase rate → purchases; purchases ×
price → GMV; reach ÷ (staff × contacts a day) → working days. Backward, from a target
(deposits, purchases or GMV): the members, reach, groups and days it needs. Every figure
rounds up where people or groups are counted (half a group is a group), and each rate
says where it came from (given, the team's history, or the seed's default)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from qunyun.i18n import InvalidValue

Source = Literal["given", "history", "default"]

# seed 000: 1:10 join rate, 4 % deposit conversion; the purchase rate of deposit payers
# and the capacity a team splits groups at are the seed's too (groups split at ~100)
DEFAULTS: dict[str, float] = {"join_rate": 0.10, "deposit_rate": 0.04,
                              "purchase_rate": 0.50, "fill": 0.90}
DEFAULT_CAPACITY = 100
RATES = ("join_rate", "deposit_rate", "purchase_rate")
MAX_PEOPLE = 100_000_000  # an audience beyond this is a typo, not a plan


class PlanError(InvalidValue):
    """A calculator input out of range; the message names the field."""


@dataclass(frozen=True, slots=True)
class Rate:
    value: float
    source: Source
    # a history rate: over how many past activities, how many of how many
    activities: int = 0
    hits: int = 0
    over: int = 0


@dataclass(frozen=True, slots=True)
class Inputs:
    """One of ``audience``, ``target_deposits``, ``target_purchases``, ``target_gmv``;
    the rates (each with its source); group size; staff capacity (optional)."""

    rates: dict[str, Rate]
    capacity: int = DEFAULT_CAPACITY
    fill: float = DEFAULTS["fill"]
    audience: int | None = None
    target_deposits: int | None = None
    target_purchases: int | None = None
    target_gmv: float | None = None
    price: float | None = None  # per purchase, for GMV
    staff: int | None = None
    contacts_per_day: int | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    direction: Literal["forward", "backward"]
    reach: int
    members: int
    groups: int
    deposits: int
    purchases: int
    gmv: float | None
    days: int | None
    rates: dict[str, Rate] = field(default_factory=dict)
    capacity: int = DEFAULT_CAPACITY
    fill: float = DEFAULTS["fill"]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ceil(x: float) -> int:
    """Round up, forgiving float noise (500.0000000001 members are 500)."""
    return math.ceil(round(x, 6))


def check(inputs: Inputs) -> None:
    targets = [inputs.audience, inputs.target_deposits, inputs.target_purchases,
               inputs.target_gmv]
    if sum(t is not None for t in targets) != 1:
        raise PlanError("give one of audience, target deposits, target purchases or "
                        "target GMV")
    for name in RATES:
        rate = inputs.rates[name].value
        if not 0 < rate <= 1:
            raise PlanError("{field}: a rate above 0 and at most 1, not {value}",
                            field=name, value=rate)
    if not 2 <= inputs.capacity <= 2000:
        raise PlanError("capacity: between 2 and 2000")
    if not 0.1 <= inputs.fill <= 1:
        raise PlanError("fill: between 0.1 and 1")
    for name in ("audience", "target_deposits", "target_purchases"):
        value = getattr(inputs, name)
        if value is not None and not 1 <= value <= MAX_PEOPLE:
            raise PlanError("{field}: between 1 and {high}", field=name, high=MAX_PEOPLE)
    if inputs.target_gmv is not None:
        if not 0 < inputs.target_gmv <= 1e12:
            raise PlanError("target_gmv: above 0")
        if not inputs.price:
            raise PlanError("price: needed to work back from a GMV target")
    if inputs.price is not None and not 0 < inputs.price <= 1e9:
        raise PlanError("price: above 0")
    if (inputs.staff is None) != (inputs.contacts_per_day is None):
        raise PlanError("staff and contacts_per_day: give both, or neither")
    if inputs.staff is not None and not 1 <= inputs.staff <= 10_000:
        raise PlanError("staff: between 1 and 10000")
    if inputs.contacts_per_day is not None and not 1 <= inputs.contacts_per_day <= 100_000:
        raise PlanError("contacts_per_day: between 1 and 100000")


def calculate(inputs: Inputs) -> Plan:
    """The plan's numbers, forward from an audience or backward from a target."""
    check(inputs)
    join, deposit, purchase = (inputs.rates[n].value for n in RATES)
    if inputs.audience is not None:
        direction: Literal["forward", "backward"] = "forward"
        reach = inputs.audience
        members = math.floor(round(reach * join, 6))
        deposits = math.floor(round(members * deposit, 6))
        purchases = math.floor(round(deposits * purchase, 6))
    else:
        direction = "backward"
        if inputs.target_gmv is not None:
            assert inputs.price
            purchases = _ceil(inputs.target_gmv / inputs.price)
            deposits = _ceil(purchases / purchase)
        elif inputs.target_purchases is not None:
            purchases = inputs.target_purchases
            deposits = _ceil(purchases / purchase)
        else:
            assert inputs.target_deposits is not None
            deposits = inputs.target_deposits
            purchases = math.floor(round(deposits * purchase, 6))
        members = _ceil(deposits / deposit)
        reach = _ceil(members / join)
    per_group = inputs.capacity * inputs.fill
    days = (_ceil(reach / (inputs.staff * inputs.contacts_per_day))
            if inputs.staff is not None and inputs.contacts_per_day is not None else None)
    return Plan(direction=direction, reach=reach, members=members,
                groups=_ceil(members / per_group) if members else 0, deposits=deposits,
                purchases=purchases,
                gmv=round(purchases * inputs.price, 2) if inputs.price else None, days=days,
                rates=dict(inputs.rates), capacity=inputs.capacity, fill=inputs.fill)


__all__ = ["DEFAULTS", "DEFAULT_CAPACITY", "RATES", "Inputs", "Plan", "PlanError", "Rate",
           "calculate", "check"]


# --- plans: stages, daily targets, plan versus actual ------------------------------------

STAGE_KINDS = ("warmup", "recruiting", "launch", "follow_up", "other")
METRICS = ("joined", "active", "enrolled", "deposit", "purchase")


def spread(total: int, days: list[str]) -> dict[str, int]:
    """``total`` over ``days`` as evenly as whole numbers go, the earlier days taking the
    remainder (500 over 3 days: 167, 167, 166)."""
    if not days:
        return {}
    share, rest = divmod(max(0, total), len(days))
    return {d: share + (1 if i < rest else 0) for i, d in enumerate(days)}


@dataclass(frozen=True, slots=True)
class DayResult:
    day: str
    metric: str
    target: int | None
    actual: int
    short: bool  # a finished day under its target by more than the plan's margin


def compare(targets: dict[tuple[str, str], int], actual: dict[tuple[str, str], int],
            days: list[str], today: str, margin: float) -> list[DayResult]:
    """Plan versus actual per day and metric; a day counts as short only once it is over
    (before ``today``) and its actual is under target × (1 − margin)."""
    out = []
    for day in days:
        for metric in METRICS:
            target = targets.get((day, metric))
            got = actual.get((day, metric), 0)
            short = (target is not None and day < today
                     and got < target * (1 - margin))
            out.append(DayResult(day, metric, target, got, short))
    return out


# --- a plan's people, checklist and budget ---------------------------------------------

ROLES = ("pm", "presenter", "kol", "atmosphere", "advisor")  # 总PM 主讲 KOL 托儿 顾问
ITEM_KINDS = ("poster", "script", "gift", "product", "other")
ITEM_STATUSES = ("todo", "doing", "done")
BUDGET_CATEGORIES = ("gifts", "red_packets", "rewards", "ads", "other")
