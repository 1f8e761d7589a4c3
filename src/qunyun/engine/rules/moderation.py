"""Moderation (F13): classify each message; warn → remove → blacklist by prior violations.

Priority -10, before replies: a blocked message stops FAQ, check-in and points rules. A
borderline score goes to the review queue (no action until a person decides). Flooding and
the same text repeated in a group count as violations too; members who joined within
``new_member_days`` get lower thresholds and a lower flood limit. Every decision carries its
reasons and is recorded.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from functools import lru_cache

from qunyun.domain.actions import Action, BlacklistMember, RecordModeration, RemoveMember, SendText
from qunyun.domain.automation import ModerationSettings
from qunyun.domain.events import DomainEvent, MessagePosted
from qunyun.engine.moderation import Thresholds, Verdict
from qunyun.engine.rule import Outcome, Rule, RuleContext
from qunyun.engine.rules.welcome import render_template
from qunyun.engine.triggers import on


@lru_cache(maxsize=32)
def _thresholds(block: float, review: float, strict_shift: float) -> Thresholds:
    """One Thresholds per distinct setting, not one per message."""
    return Thresholds(block=block, review=review, strict_shift=strict_shift)


class ModerationRule(Rule):
    name = "moderation"
    priority = -10
    trigger = on(MessagePosted)

    def matches(self, event: DomainEvent, ctx: RuleContext) -> object | None:
        if (not isinstance(event, MessagePosted) or ctx.automation is None
                or ctx.group is None or ctx.member is None):
            return None
        cfg = ctx.automation.settings(ctx.group.id).moderation
        if not cfg.enabled:
            return None
        facts = ctx.activity
        strict = bool(facts and facts.member_since is not None and cfg.new_member_days
                      and event.occurred_at - facts.member_since
                      < timedelta(days=cfg.new_member_days))
        verdict = ctx.automation.classifier.classify(
            event.text, message_type=event.message_type, strict=strict,
            thresholds=_thresholds(cfg.block_threshold, cfg.review_threshold,
                                   cfg.strict_shift))
        flood_limit = cfg.new_member_flood_messages if strict else cfg.flood_messages
        flood = facts is not None and facts.recent_messages > flood_limit
        repeat = (facts is not None and facts.same_text_recent >= cfg.repeat_limit
                  and len(event.text.strip()) >= cfg.repeat_min_length)
        if not (flood or repeat):
            return None if verdict.verdict == "ok" else verdict
        assert facts is not None
        reasons = list(verdict.reasons)
        if flood:
            reasons.append(f"刷屏：{cfg.flood_seconds} 秒内 {facts.recent_messages} 条")
        if repeat:
            minutes = cfg.repeat_seconds // 60
            reasons.append(f"重复消息：{minutes} 分钟内第 {facts.same_text_recent} 次")
        # flooding or repeating is a violation whatever the text's own score
        return Verdict("block", verdict.score, tuple(reasons), verdict.signals)

    def run(self, event: DomainEvent, ctx: RuleContext, match: object) -> Outcome:
        assert isinstance(event, MessagePosted) and isinstance(match, Verdict)
        assert ctx.group is not None and ctx.member is not None and ctx.automation is not None
        cfg = ctx.automation.settings(ctx.group.id).moderation
        record = RecordModeration(
            group_id=ctx.group.id, member_id=ctx.member.id, message_id=event.message_id,
            text=event.text[:2000], verdict=match.verdict, score=round(match.score, 4),
            reasons=match.reasons, action="review", status="pending")
        if match.verdict == "review":
            return Outcome([record])
        prior = ctx.activity.prior_violations if ctx.activity else 0
        step = step_for(cfg, prior)
        return Outcome([replace(record, action=step, status="logged"),
                        *escalation(cfg, step, group_id=ctx.group.id, member_id=ctx.member.id,
                                    name=ctx.member.name, reasons=match.reasons)], stop=True)


def step_for(cfg: ModerationSettings, prior_violations: int) -> str:
    """The escalation step for a member with this many recent violations."""
    return cfg.escalation[min(prior_violations, len(cfg.escalation) - 1)]


def escalation(cfg: ModerationSettings, step: str, *, group_id: int, member_id: int,
               name: str, reasons: tuple[str, ...] | list[str]) -> list[Action]:
    """What a step does: warn @them with the reasons, or remove (and blacklist). Shared by
    the rule and by a person confirming a queued message."""
    reason = "；".join(reasons[:3]) or "违规"
    if step == "warn":
        return [SendText(group_id=group_id, mention_member_ids=(member_id,),
                         text=render_template(cfg.warn_template,
                                              {"name": name, "reason": reason}))]
    actions: list[Action] = [RemoveMember(group_id=group_id, member_id=member_id,
                                          reason=reason)]
    if step == "blacklist":
        actions.append(BlacklistMember(member_id=member_id, days=cfg.blacklist_days,
                                       reason=f"自动拉黑：{reason}"))
    return actions
