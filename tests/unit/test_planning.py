"""The goal calculator against seed 000's numbers, both ways, and its refusals."""

from __future__ import annotations

import pytest

from qunyun.domain.planning import DEFAULTS, Inputs, PlanError, Rate, calculate


def rates(join: float = 0.1, deposit: float = 0.04, purchase: float = 0.5) -> dict[str, Rate]:
    return {"join_rate": Rate(join, "given"), "deposit_rate": Rate(deposit, "given"),
            "purchase_rate": Rate(purchase, "given")}


def test_seed_000_backward_from_twenty_deposits() -> None:
    """5 staff × 120 contacts a day; 1:10 join rate; 4 % deposits; groups split at ~100."""
    plan = calculate(Inputs(rates=rates(), target_deposits=20, capacity=100, fill=0.9,
                            staff=5, contacts_per_day=120))
    assert (plan.direction, plan.reach, plan.members, plan.groups, plan.deposits,
            plan.days) == ("backward", 5000, 500, 6, 20, 9)


def test_seed_000_forward_from_five_thousand_reached() -> None:
    plan = calculate(Inputs(rates=rates(), audience=5000, capacity=100, fill=0.9))
    assert (plan.direction, plan.members, plan.deposits, plan.groups, plan.days) == (
        "forward", 500, 20, 6, None)
    assert plan.purchases == 10 and plan.gmv is None


def test_back_from_a_gmv_target_and_rounding_up_people() -> None:
    plan = calculate(Inputs(rates=rates(purchase=0.3), target_gmv=100_000, price=1999))
    # 100,000 ÷ 1,999 → 51 purchases; ÷ 0.3 → 170 deposits; ÷ 0.04 → 4,250 members
    assert (plan.purchases, plan.deposits, plan.members, plan.reach) == (51, 170, 4250, 42500)
    assert plan.gmv == 101_949.0 and plan.groups == 48  # 4,250 ÷ 90 = 47.2 → 48
    odd = calculate(Inputs(rates=rates(deposit=0.03), target_deposits=20))
    assert odd.members == 667  # 666.7 people is 667 people


def test_refusals_name_the_field() -> None:
    with pytest.raises(PlanError, match="give one of"):
        calculate(Inputs(rates=rates()))
    with pytest.raises(PlanError, match="give one of"):
        calculate(Inputs(rates=rates(), audience=10, target_deposits=2))
    with pytest.raises(PlanError, match="join_rate"):
        calculate(Inputs(rates=rates(join=0), audience=10))
    with pytest.raises(PlanError, match="price"):
        calculate(Inputs(rates=rates(), target_gmv=1000))
    with pytest.raises(PlanError, match="staff and contacts_per_day"):
        calculate(Inputs(rates=rates(), audience=10, staff=3))
    with pytest.raises(PlanError, match="capacity"):
        calculate(Inputs(rates=rates(), audience=10, capacity=1))
    assert DEFAULTS["join_rate"] == 0.1 and DEFAULTS["deposit_rate"] == 0.04
