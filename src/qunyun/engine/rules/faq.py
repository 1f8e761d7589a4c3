"""FAQ replies (F12): answer a question from the group's FAQ, with a cool-down per entry and
group so the bot never floods; stay silent when unsure (optionally handing it to staff)."""

from __future__ import annotations

import re
from datetime import timedelta

from qunyun.domain.actions import Action, HandToStaff, NoteCooldown, SendText
from qunyun.domain.events import DomainEvent, MessagePosted
from qunyun.engine.faq import FaqMatch
from qunyun.engine.rule import Outcome, Rule, RuleContext
from qunyun.engine.triggers import on

_QUESTION = re.compile(r"[?？]\s*$|吗\s*$|怎么|如何|多少|哪里|什么时候|几点")


class FaqRule(Rule):
    name = "faq"
    priority = 0
    trigger = on(MessagePosted)

    def matches(self, event: DomainEvent, ctx: RuleContext) -> object | None:
        if (not isinstance(event, MessagePosted) or ctx.automation is None
                or ctx.group is None or ctx.member is None or not event.text):
            return None
        cfg = ctx.automation.settings(ctx.group.id).faq
        if not cfg.enabled:
            return None
        found = ctx.automation.faq_index(ctx.group.id).match(event.text)
        if found is None or found.score < cfg.min_score:
            if cfg.handoff_unanswered and _QUESTION.search(event.text):
                return "handoff"
            return None
        answer = ctx.automation.answers.get(found.id)
        if answer is None:
            return None
        last = ctx.cooldowns.get(f"faq:{found.id}")
        if last is not None and event.occurred_at - last < timedelta(
                seconds=answer.cooldown_seconds):
            return None
        return found

    def run(self, event: DomainEvent, ctx: RuleContext, match: object) -> Outcome:
        assert isinstance(event, MessagePosted)
        assert ctx.group is not None and ctx.member is not None and ctx.automation is not None
        if match == "handoff":
            return Outcome([HandToStaff(group_id=ctx.group.id, member_id=ctx.member.id,
                                        title=f"待回答：{event.text[:80]}",
                                        reason="FAQ 没有把握回答")])
        assert isinstance(match, FaqMatch)
        answer = ctx.automation.answers[match.id]
        actions: list[Action] = [
            SendText(group_id=ctx.group.id, text=answer.answer,
                     mention_member_ids=(ctx.member.id,), reply_to=event.message_id),
            NoteCooldown(group_id=ctx.group.id, key=f"faq:{match.id}"),
        ]
        return Outcome(actions)
