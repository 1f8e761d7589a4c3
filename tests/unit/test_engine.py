from __future__ import annotations

from typing import ClassVar

from qunyun.domain.actions import RemoveMember, SendText
from qunyun.domain.events import DomainEvent, MemberJoined, MessagePosted
from qunyun.engine import GroupFacts, MemberFacts, Outcome, Rule, RuleContext, evaluate
from qunyun.engine.rules import WelcomeRule
from qunyun.engine.triggers import on, text_contains, text_matches
from tests.factories import T0, event, raw_join, raw_message


def ctx(settings: dict[str, object] | None = None, joins: int = 1) -> RuleContext:
    return RuleContext(
        now=T0,
        group=GroupFacts(id=1, name="业主群1", platform="sandbox", rules_text="禁止广告",
                         settings=settings or {}),
        member=MemberFacts(id=7, number=10007, name="张三", joins_in_group=joins),
    )


class Say(Rule):
    def __init__(self, name: str, priority: int, needle: str, stop: bool = False) -> None:
        self.name = name  # type: ignore[misc]
        self.priority = priority  # type: ignore[misc]
        self.trigger = text_contains(needle)
        self.stop = stop

    def run(self, event: DomainEvent, ctx: RuleContext, match: object) -> Outcome:
        return Outcome([SendText(group_id=1, text=self.name)], stop=self.stop)


class Boom(Rule):
    name: ClassVar[str] = "boom"
    priority: ClassVar[int] = 0

    def run(self, event: DomainEvent, ctx: RuleContext, match: object) -> Outcome:
        raise RuntimeError("kaput")


MSG = event(raw_message("m1", "g1", "u1", "请问价格多少 加V"))


def texts(result: object) -> list[str]:
    return [a.text for _, a in result.actions]  # type: ignore[attr-defined]


def test_at_most_one_rule_fires_per_priority_group() -> None:
    result = evaluate(MSG, ctx(), [Say("a", 0, "价格"), Say("b", 0, "价格"), Say("c", 5, "价格")])
    assert result.fired == ("a", "c")
    assert texts(result) == ["a", "c"]


def test_lower_priority_number_runs_first_and_stop_blocks_later_groups() -> None:
    rules = [Say("reply", 0, "价格"), Say("moderate", -10, "加V", stop=True)]
    result = evaluate(MSG, ctx(), rules)
    assert result.fired == ("moderate",)
    assert result.stopped_by == "moderate"
    assert texts(result) == ["moderate"]


def test_failing_rule_is_isolated_and_reported() -> None:
    result = evaluate(MSG, ctx(), [Boom(), Say("after", 0, "价格"), Say("other", 3, "价格")])
    assert result.fired == ("after", "other")
    assert len(result.errors) == 1
    assert result.errors[0].rule == "boom" and "kaput" in result.errors[0].error


def test_trigger_combinators() -> None:
    join = event(raw_join("j1", "g1", "u1"))
    t = on(MessagePosted) & (text_contains("价格") | text_matches(r"^\d+$"))
    assert t(MSG, ctx()) and not t(join, ctx())
    assert (~t)(join, ctx())
    assert on(MemberJoined)(join, ctx())
    assert "&" in t.name and "|" in t.name


def test_trigger_kinds_follow_the_combinators() -> None:
    msg, join = on(MessagePosted), on(MemberJoined)
    assert msg.kinds == (MessagePosted,) and msg.admits(MessagePosted)
    assert not msg.admits(MemberJoined)
    assert (msg | join).kinds == (MessagePosted, MemberJoined)
    assert (msg & join).kinds == ()  # no event is both
    assert (on(DomainEvent) & msg).kinds == (MessagePosted,)
    assert (msg & text_contains("价格")).kinds == (MessagePosted,)
    assert (~msg).kinds is None and (~msg).admits(MemberJoined)


class Spy(Rule):
    """Counts the events it is asked about."""

    name: ClassVar[str] = "spy"

    def __init__(self, trigger: object) -> None:
        self.trigger = trigger  # type: ignore[assignment]
        self.asked: list[str] = []

    def matches(self, event: DomainEvent, ctx: RuleContext) -> object | None:
        self.asked.append(event.kind)
        return None


def test_dispatcher_asks_a_rule_only_about_the_kinds_its_trigger_admits() -> None:
    join = event(raw_join("j1", "g1", "u1"))
    joins, anything = Spy(on(MemberJoined)), Spy(~on(MemberJoined))
    for e in (MSG, join, MSG):
        evaluate(e, ctx(), [joins, anything])
    assert joins.asked == [join.kind]
    assert anything.asked == [MSG.kind, join.kind, MSG.kind]


def test_welcome_renders_template_and_mentions_newcomer() -> None:
    join = event(raw_join("j1", "g1", "u1"))
    result = evaluate(join, ctx({"welcome_template": "欢迎 {name} 加入{group}！群规：{rules} {x}"}),
                      [WelcomeRule()])
    [(rule, action)] = result.actions
    assert rule == "welcome"
    assert isinstance(action, SendText)
    assert action.text == "欢迎 张三 加入业主群1！群规：禁止广告 {x}"
    assert action.mention_member_ids == (7,)


def test_welcome_skips_rejoin_and_groups_without_template() -> None:
    join = event(raw_join("j1", "g1", "u1"))
    assert evaluate(join, ctx({"welcome_template": "hi"}, joins=2), [WelcomeRule()]).actions == ()
    assert evaluate(join, ctx({}), [WelcomeRule()]).actions == ()


def test_action_required_capabilities() -> None:
    assert {c.value for c in SendText(group_id=1, text="x").required_capabilities()} == {
        "send_text"}
    assert "mention" in {c.value for c in SendText(group_id=1, text="x", mention_member_ids=(1,))
                         .required_capabilities()}
    assert {c.value for c in RemoveMember(group_id=1, member_id=2).required_capabilities()} == {
        "remove_member"}
