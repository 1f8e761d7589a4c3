"""The group lifecycle's transitions and rules (pure): where a state may go, and when the
rules move a group on their own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from qunyun.domain.groups import (
    GroupFacts,
    GroupState,
    LifecycleError,
    Thresholds,
    automatic,
    check_transition,
    next_states,
)
from qunyun.i18n import translate

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def facts(state: str, **kw: object) -> GroupFacts:
    values: dict[str, object] = {"members": 10, "capacity": 200, "open_code": False,
                                 "speakers_per_day": [5] * 10}
    values.update(kw)
    return GroupFacts(state=state, **values)  # type: ignore[arg-type]


def test_only_allowed_transitions_and_the_refusal_names_the_allowed_ones() -> None:
    assert check_transition("planned", "recruiting") == GroupState.RECRUITING
    assert check_transition("cooling", "active") == GroupState.ACTIVE
    assert check_transition("active", "active") == GroupState.ACTIVE  # staying is no move
    with pytest.raises(LifecycleError) as refused:
        check_transition("closed", "planned")
    assert refused.value.template == "a {old} group cannot change state"
    with pytest.raises(LifecycleError) as refused:
        check_transition("active", "planned")
    assert refused.value.values["allowed"] == "cooling, dissolving"  # the API's English
    assert refused.value.in_language("zh-CN") == (
        "运营中的群不能改为筹备中，只能改为：降温中、解散中")
    with pytest.raises(LifecycleError):
        check_transition("active", "long_term")
    assert next_states("recruiting") == ["active", "dissolving"]
    assert next_states("closed") == []
    # people read the states as words, never the codes
    assert translate("gstate.cooling", "zh-CN") != "gstate.cooling"


def test_the_rules_move_groups_on_their_own() -> None:
    t = Thresholds()
    assert automatic(facts("planned", open_code=True), t, NOW) == (GroupState.RECRUITING,
                                                                   "join_code_open")
    assert automatic(facts("planned", open_code=True, has_chat=False), t, NOW) is None
    assert automatic(facts("planned"), t, NOW) is None
    assert automatic(facts("recruiting", members=200), t, NOW) == (GroupState.ACTIVE, "full")
    assert automatic(facts("recruiting", starts_at=NOW - timedelta(minutes=1)), t, NOW) == (
        GroupState.ACTIVE, "started")
    assert automatic(facts("recruiting", starts_at=NOW + timedelta(days=1)), t, NOW) is None
    quiet_week = [9, 9, 9, 2, 1, 0, 0, 2, 1, 0]
    assert automatic(facts("active", speakers_per_day=quiet_week), t, NOW) == (
        GroupState.COOLING, "quiet")
    # one lively day in the week: not cooling; too little history to judge: not cooling
    assert automatic(facts("active", speakers_per_day=[2, 1, 0, 5, 2, 1, 0]), t, NOW) is None
    assert automatic(facts("active", speakers_per_day=[0, 0, 0]), t, NOW) is None
    assert automatic(facts("cooling", speakers_per_day=[0, 0, 4, 3]), t, NOW) == (
        GroupState.ACTIVE, "recovered")
    assert automatic(facts("cooling", speakers_per_day=[0, 3, 2]), t, NOW) is None
    # a group's own thresholds
    own = Thresholds.of({"lifecycle": {"days": 3, "speakers": 10}})
    assert (own.days, own.speakers, own.recover_days) == (3, 10, 2)
    assert automatic(facts("active", speakers_per_day=[9, 9, 9]), own, NOW) == (
        GroupState.COOLING, "quiet")
    assert automatic(facts("dissolving"), t, NOW) is None and automatic(
        facts("closed"), t, NOW) is None


def test_a_health_threshold_cools_a_lively_but_unhealthy_group() -> None:
    """Many speakers, but a low health score (an ad wave, everyone leaving): cooling when
    the group says so; it comes back only once healthy again and lively."""
    t = Thresholds.of({"lifecycle": {"health": 40}})
    lively = [5] * 7
    assert automatic(facts("active", speakers_per_day=lively, health=35.0), t, NOW) == (
        GroupState.COOLING, "unhealthy")
    assert automatic(facts("active", speakers_per_day=lively, health=55.0), t, NOW) is None
    assert automatic(facts("active", speakers_per_day=lively[:3], health=10.0), t,
                     NOW) is None  # judged only after its days in the state
    assert automatic(facts("active", speakers_per_day=lively, health=10.0), Thresholds(),
                     NOW) is None  # no health threshold: the score is not judged
    assert automatic(facts("cooling", speakers_per_day=lively, health=35.0), t, NOW) is None
    assert automatic(facts("cooling", speakers_per_day=lively, health=60.0), t, NOW) == (
        GroupState.ACTIVE, "recovered")
