"""Moderation (F13): classify each message; warn → remove → blacklist by prior violations.

Priority -10, after check-ins (-20: a check-in is never a violation) and before replies: a
blocked message stops the FAQ and points rules. A borderline score goes to the review queue
(no action until a person decides). Flooding and one member repeating the same text count
as violations too; a text many members post (a check-in sentence, 收到) is suspect only when
it is ad-like on its own, and then the crowd makes it a coordinated ad. Members who joined
within ``new_member_days`` get lower thresholds and a lower flood limit; the group's owner,
admins and the team's staff are not moderated (``exempt_staff``). Every decision carries its
reasons and is recorded; a decision on an event too old to act on is recorded, not acted on.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

from qunyun.domain.actions import (
    Action,
    BlacklistMember,
    DeleteMessage,
    HandToStaff,
    MuteMember,
    RecordModeration,
    RemoveMember,
    SendText,
)
from qunyun.domain.automation import ModerationSettings
from qunyun.domain.events import DomainEvent, MemberJoined, MessageEdited, MessagePosted
from qunyun.engine.freshness import is_stale
from qunyun.engine.moderation import (
    CONTACT_SIGNALS,
    Classifier,
    Verdict,
    public_reason,
    thresholds,
)
from qunyun.engine.rule import Outcome, Rule, RuleContext
from qunyun.engine.rules.welcome import render_template
from qunyun.engine.triggers import on

STALE_NOTE = "消息已过处理时限，只记录不处理"
NAME_NOTE = "昵称"
# a handle to write to (@some_shop_bot) in a name: the raid account's whole message
_HANDLE = re.compile(r"@[A-Za-z][A-Za-z0-9_]{4,}")


class ModerationRule(Rule):
    name = "moderation"
    priority = -10
    trigger = on(MessagePosted, MessageEdited)

    def matches(self, event: DomainEvent, ctx: RuleContext) -> object | None:
        if (not isinstance(event, MessagePosted | MessageEdited) or ctx.automation is None
                or ctx.group is None or ctx.member is None):
            return None
        cfg = ctx.automation.settings(ctx.group.id).moderation
        if not cfg.enabled or (cfg.exempt_staff and ctx.member.staff):
            return None
        facts = ctx.activity
        strict = bool(facts and facts.member_since is not None and cfg.new_member_days
                      and event.occurred_at - facts.member_since
                      < timedelta(days=cfg.new_member_days))
        verdict = ctx.automation.classifier.classify(
            event.text, message_type=event.message_type, strict=strict,
            thresholds=thresholds(cfg.block_threshold, cfg.review_threshold,
                                  cfg.strict_shift))
        flood_limit = cfg.new_member_flood_messages if strict else cfg.flood_messages
        flood = facts is not None and facts.recent_messages > flood_limit
        # one person pasting the same text again and again; what many people post alike
        # (a check-in sentence, 收到) is talk, unless it is an ad on its own
        repeat = (facts is not None and facts.own_repeats >= cfg.repeat_limit
                  and len(event.text.strip()) >= cfg.repeat_min_length)
        crowd = (facts is not None and verdict.verdict == "review"
                 and facts.crowd_repeats + 1 >= cfg.crowd_limit)
        if not (flood or repeat or crowd):
            return None if verdict.verdict == "ok" else verdict
        assert facts is not None
        reasons = list(verdict.reasons)
        signals = list(verdict.signals)
        minutes = cfg.repeat_seconds // 60
        if flood:
            reasons.append(f"刷屏：{cfg.flood_seconds} 秒内 {facts.recent_messages} 条")
            signals.append("flood")
        if repeat:
            reasons.append(f"重复消息：{minutes} 分钟内第 {facts.own_repeats} 次")
            signals.append("repeat")
        if crowd:
            reasons.append(f"{minutes} 分钟内 {facts.crowd_repeats + 1} 人发了同样的广告")
            signals.append("crowd")
        # flooding or repeating is a violation whatever the text's own score
        return Verdict("block", verdict.score, tuple(reasons), tuple(signals))

    def run(self, event: DomainEvent, ctx: RuleContext, match: object) -> Outcome:
        assert isinstance(event, MessagePosted | MessageEdited) and isinstance(match, Verdict)
        assert ctx.group is not None and ctx.member is not None and ctx.automation is not None
        cfg = ctx.automation.settings(ctx.group.id).moderation
        record = RecordModeration(
            group_id=ctx.group.id, member_id=ctx.member.id, message_id=event.message_id,
            text=event.text[:2000], verdict=match.verdict, score=round(match.score, 4),
            reasons=match.reasons, action="review", status="pending", signals=match.signals)
        if match.verdict == "review":
            return Outcome([record])
        prior = ctx.activity.prior_violations if ctx.activity else 0
        step = step_for(cfg, prior)
        acts = escalation(cfg, step, group_id=ctx.group.id, member_id=ctx.member.id,
                          name=ctx.member.name, reasons=match.reasons, signals=match.signals)
        age, fresh = ctx.now - event.occurred_at, ctx.automation.team.freshness
        if any(is_stale(a, age, fresh) for a in acts):
            # too late to warn or remove for it: recorded (and counted as an ad), not acted on
            return Outcome([replace(record, action="none", status="logged",
                                    reasons=(*match.reasons, STALE_NOTE))], stop=True)
        # the ad goes too, where the platform lets the bot delete it (Telegram)
        delete = DeleteMessage(group_id=ctx.group.id, member_id=ctx.member.id,
                               message_id=event.message_id, reason="；".join(match.reasons[:3]))
        return Outcome([replace(record, action=step, status="logged"), delete, *acts],
                       stop=True)


def step_for(cfg: ModerationSettings, prior_violations: int) -> str:
    """The escalation step for a member with this many recent violations."""
    return cfg.escalation[min(prior_violations, len(cfg.escalation) - 1)]


def escalation(cfg: ModerationSettings, step: str, *, group_id: int, member_id: int,
               name: str, reasons: tuple[str, ...] | list[str],
               signals: tuple[str, ...] | list[str] = ()) -> list[Action]:
    """What a step does: warn @them saying what to stop doing, or remove (and blacklist,
    which removes them from every group). Shared by the rule and by a person confirming a
    queued message."""
    if step == "warn":
        return [SendText(group_id=group_id, mention_member_ids=(member_id,),
                         text=render_template(cfg.warn_template, {
                             "name": name, "reason": public_reason(signals)}))]
    reason = "；".join(reasons[:3]) or "违规"
    if step == "mute":
        return [MuteMember(group_id=group_id, member_id=member_id, minutes=cfg.mute_minutes,
                           reason=reason)]
    if step == "blacklist":
        # the blacklist removes them from this group and every other one they are in
        return [BlacklistMember(group_id=group_id, member_id=member_id,
                                days=cfg.blacklist_days, reason=f"自动拉黑：{reason}")]
    return [RemoveMember(group_id=group_id, member_id=member_id, reason=reason)]


def name_verdict(name: str, cfg: ModerationSettings, classifier: Classifier
                 ) -> Verdict | None:
    """Whether a newcomer's name is an ad (None: it is not, or names are not checked): a
    contact in it (a link, number, WeChat id, ``@account``) blocks; a name that only reads
    like an ad is for a person to review. The entry gate asks the same of an applicant."""
    if not cfg.enabled or not cfg.check_names:
        return None
    verdict = classifier.classify(
        name, strict=True, thresholds=thresholds(cfg.block_threshold, cfg.review_threshold,
                                                 cfg.strict_shift))
    handle = _HANDLE.search(name) is not None
    contact = handle or bool(CONTACT_SIGNALS & set(verdict.signals))
    reasons = (f"{NAME_NOTE}：{name[:40]}", *verdict.reasons,
               *(("含账号 @…",) if handle else ()))
    if contact and (handle or verdict.verdict == "block"):
        return Verdict("block", max(verdict.score, cfg.block_threshold), reasons,
                       (*verdict.signals, "name"))
    if verdict.verdict == "block":
        return Verdict("review", verdict.score, reasons, (*verdict.signals, "name"))
    return None


class NameRule(Rule):
    """A newcomer whose name is an ad: raid accounts carry a link, a number or an account to
    write to in their names and may never post. A contact in the name removes them on
    joining (like an ad's sender), a name that only reads like an
    ad goes to the review queue; either way nobody greets them. Staff are left alone."""

    name = "moderation_name"
    priority = -10
    trigger = on(MemberJoined)

    def matches(self, event: DomainEvent, ctx: RuleContext) -> object | None:
        if (not isinstance(event, MemberJoined) or ctx.automation is None
                or ctx.group is None or ctx.member is None or ctx.member.staff):
            return None
        return name_verdict(event.member.name, ctx.automation.settings(ctx.group.id).moderation,
                            ctx.automation.classifier)

    def run(self, event: DomainEvent, ctx: RuleContext, match: object) -> Outcome:
        assert isinstance(event, MemberJoined) and isinstance(match, Verdict)
        assert ctx.group is not None and ctx.member is not None
        record = RecordModeration(
            group_id=ctx.group.id, member_id=ctx.member.id, message_id="",
            text=event.member.name[:2000], verdict=match.verdict, score=round(match.score, 4),
            reasons=match.reasons, action="review", status="pending", signals=match.signals)
        if match.verdict == "review":
            return Outcome([record], stop=True)
        reason = "；".join(match.reasons[:3])
        return Outcome([replace(record, action="remove", status="logged"),
                        RemoveMember(group_id=ctx.group.id, member_id=ctx.member.id,
                                     reason=reason)], stop=True)


class JoinFloodRule(Rule):
    """Many joins in a short time — a raid of accounts, or a poster that took off: one task
    for the team to look at the newcomers, when the count reaches the limit (once per
    burst). It greets, checks and counts nobody differently; it stops nothing."""

    name = "join_flood"
    priority = 5
    trigger = on(MemberJoined)

    def matches(self, event: DomainEvent, ctx: RuleContext) -> object | None:
        if not isinstance(event, MemberJoined) or ctx.automation is None or ctx.group is None:
            return None
        cfg = ctx.automation.settings(ctx.group.id).moderation
        if not cfg.enabled or ctx.recent_joins != cfg.join_flood_joins:
            return None
        return cfg

    def run(self, event: DomainEvent, ctx: RuleContext, match: object) -> Outcome:
        assert isinstance(match, ModerationSettings) and ctx.group is not None
        return Outcome([HandToStaff(
            group_id=ctx.group.id,
            title=f"入群激增：「{ctx.group.name}」{match.join_flood_seconds} 秒内 "
                  f"{ctx.recent_joins} 人加入",
            reason="可能是广告号成批进群，也可能是海报带来的：请看看新成员，必要时开启入群审核")])
