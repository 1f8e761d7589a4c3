"""The rehearsal's model (pure): reach over the recruiting days, when people pay, the
forecast as the simulation's average, seeded crowds, tiring pushes, calibration."""

from __future__ import annotations

from collections import Counter

from qunyun.domain.rehearsal import (
    REAL_RANGES,
    Community,
    Crowd,
    Outreach,
    burstiness,
    calibrate,
    deposit_days,
    forecast,
    gini,
    purchase_days,
    reach_per_day,
)

DAYS = tuple(f"2026-12-{d:02d}" for d in range(1, 9))


def outreach(**changes: object) -> Outreach:
    values: dict[str, object] = {
        "days": DAYS, "reach": tuple(reach_per_day(8, (0, 4), 2400, 800)), "join_rate": 0.1,
        "deposit_rate": 0.1, "purchase_rate": 0.5, "launch": (6,), "room": (90, 90, 90)}
    values.update(changes)
    return Outreach(**values)  # type: ignore[arg-type]


def test_reach_at_staff_capacity_or_evenly() -> None:
    # seed 000: five staff × 120 contacts a day until 5,000 are reached
    assert reach_per_day(12, (1, 10), 5000, 600) == [0] + [600] * 8 + [200, 0, 0]
    assert reach_per_day(5, (0, 2), 10, None) == [4, 3, 3, 0, 0]
    assert reach_per_day(5, (0, 4), 0, None) == [0] * 5


def test_money_days() -> None:
    # before the launch: on a launch day still to come; after it: the day or the two after
    assert deposit_days(0, 8, (6, 7)) == [(6, 0.5), (7, 0.5)]
    assert deposit_days(7, 8, (6,)) == [(7, 1 / 3)]  # the rest falls after the plan
    assert deposit_days(2, 8, ()) == [(2, 1 / 3), (3, 1 / 3), (4, 1 / 3)]
    assert purchase_days(7, 8) == [(7, 0.5)]


def test_forecast_totals_follow_the_rates() -> None:
    f = forecast(outreach())
    assert round(sum(d["joined"] for d in f), 6) == 240
    assert [round(d["deposit"], 6) for d in f] == [0, 0, 0, 0, 0, 0, 24, 0]
    assert round(sum(d["purchase"] for d in f), 6) == 12  # half on day 6, half on day 7
    assert f[0]["active"] > 0 and f[7]["active"] < max(d["active"] for d in f)  # quietens


def test_a_seed_gives_one_crowd_and_many_seeds_average_to_the_forecast() -> None:
    def run(seed: int) -> tuple[Counter[str], list[tuple[int, int, str, int]]]:
        crowd = Crowd(outreach(), seed=seed)
        seen: Counter[str] = Counter()
        trail = []
        for d in range(len(DAYS)):
            speakers: set[int] = set()
            for h in crowd.day(d):
                if h.kind == "leave":
                    crowd.left(h.person)
                if h.kind == "message" and not crowd.people[h.person].left:
                    speakers.add(h.person)
                elif h.kind != "message":
                    seen[h.kind] += 1
                trail.append((h.day, h.minute, h.kind, h.person))
            seen["active"] += len(speakers)
        return seen, trail

    assert run(3) == run(3)
    assert run(3)[1] != run(4)[1]
    total: Counter[str] = Counter()
    for seed in range(60):
        total.update(run(seed)[0])
    f = forecast(outreach())
    for kind, metric in (("join", "joined"), ("deposit", "deposit"), ("purchase", "purchase"),
                         ("active", "active")):
        expected = sum(d[metric] for d in f)
        assert abs(total[kind] / 60 - expected) <= 0.08 * expected, (kind, total[kind] / 60)


def test_groups_fill_in_order_and_existing_members_take_room() -> None:
    crowd = Crowd(outreach(room=(30, 30), already=(25, 0)), seed=1)
    assert len(crowd.existing()) == 25 and crowd.present == [25, 0]
    crowd.day(0)
    assert crowd.present[0] == 30 and crowd.full_on[0] == 0 and crowd.present[1] > 0
    # groups already over their room are full from the start; the last one overflows
    crowd = Crowd(outreach(room=(30, 30), already=(40, 10)), seed=1)
    crowd.existing()
    assert crowd.full_on == {0: 0}
    crowd.day(0)
    assert crowd.present[1] > 30 and crowd.full_on[1] == 0


def test_too_many_pushes_a_day_tire_people() -> None:
    crowd = Crowd(outreach(), Community(leave_per_extra_push=0.2, mute_per_extra_push=0.3),
                  seed=2)
    crowd.day(0)
    answers = crowd.pushed(0, 0, 20 * 60)
    assert answers and all(h.kind == "message" and h.minute > 20 * 60 for h in answers)
    assert not any(p.muted for p in crowd.people)
    for _ in range(3):  # the fourth push of the day is one too many
        tired = crowd.pushed(0, 0, 21 * 60)
    assert any(h.kind == "leave" for h in tired)
    assert any(p.muted for p in crowd.people)
    assert crowd.pushed(0, 1, 9 * 60) is not None and crowd.pushes[(0, 1)] == 1


def test_calibration_measures() -> None:
    assert gini([1] * 10) == 0 and round(gini([0] * 9 + [10]), 6) == 0.9
    assert burstiness([60.0] * 50) == -1.0  # a steady stream
    assert burstiness([1] * 30 + [1000]) > 0.5  # quick exchanges, then a long silence
    checks = {c.name: c for c in calibrate([0] * 90 + [50] * 10, [0.1, 0.08], [1, 2, 600])}
    assert set(checks) == set(REAL_RANGES)
    assert checks["gini"].ok and checks["daily_active_share"].value == 0.09
    assert not calibrate([5] * 100, [0.9], [60.0] * 10)[0].ok  # everyone alike: not real
