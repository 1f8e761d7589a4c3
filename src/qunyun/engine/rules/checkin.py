"""Check-ins (F14): a keyword, an image, or an image with the keyword counts as today's
check-in; streaks are consecutive team-local days, totals cumulative. Replies once a day.

Priority -20, before moderation: thirty students posting 今天的内容打卡了 within ten minutes
are checking in, not spamming, so a check-in is recognised (and stops the run) before
moderation could count the shared words against anyone. A text that is ad-like on its own
is not a check-in, whatever keyword it carries: moderation judges it.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from qunyun.domain.actions import Action, AwardPoints, RecordCheckin, SendText
from qunyun.domain.automation import CheckinSettings
from qunyun.domain.events import DomainEvent, MessagePosted
from qunyun.engine.moderation import thresholds
from qunyun.engine.rule import Outcome, Rule, RuleContext
from qunyun.engine.rules.welcome import render_template
from qunyun.engine.triggers import on

_ASKING = re.compile(r"[?？]|吗|呢|怎么|几点|什么")
_MAX_KEYWORD_TEXT = 40  # a long message that mentions 打卡 is talk, not a check-in


def is_checkin(cfg: CheckinSettings, text: str, message_type: str) -> bool:
    has_keyword = any(k in text for k in cfg.keywords)
    if cfg.mode == "image":
        return message_type == "image"
    if cfg.mode == "image_and_keyword":
        return message_type == "image" and has_keyword
    return (has_keyword and len(text) <= _MAX_KEYWORD_TEXT
            and _ASKING.search(text) is None)


def next_streak(last_day: str | None, last_streak: int, today: date) -> int:
    if last_day == (today - timedelta(days=1)).isoformat():
        return last_streak + 1
    return 1


class CheckinRule(Rule):
    name = "checkin"
    priority = -20
    trigger = on(MessagePosted)

    def matches(self, event: DomainEvent, ctx: RuleContext) -> object | None:
        if (not isinstance(event, MessagePosted) or ctx.automation is None
                or ctx.group is None or ctx.member is None):
            return None
        settings = ctx.automation.settings(ctx.group.id)
        cfg = settings.checkin
        if not cfg.enabled or not is_checkin(cfg, event.text, event.message_type):
            return None
        if ctx.member.staff and not cfg.include_staff:
            return None  # the teacher's "今日内容，打卡截止22点" is a notice, not a check-in
        mod = settings.moderation
        if mod.enabled and ctx.automation.classifier.classify(
                event.text, message_type=event.message_type,
                thresholds=thresholds(mod.block_threshold, mod.review_threshold,
                                      mod.strict_shift)).verdict != "ok":
            return None  # "打卡领红包，加V…" is an ad with a keyword: moderation decides
        today = event.occurred_at.astimezone(ZoneInfo(ctx.timezone)).date()
        facts = ctx.checkin
        if facts is not None and facts.last_day == today.isoformat():
            return None  # already checked in today: the message is ordinary talk
        return today

    def run(self, event: DomainEvent, ctx: RuleContext, match: object) -> Outcome:
        assert isinstance(event, MessagePosted) and isinstance(match, date)
        assert ctx.group is not None and ctx.member is not None and ctx.automation is not None
        settings = ctx.automation.settings(ctx.group.id)
        facts = ctx.checkin
        streak = next_streak(facts.last_day if facts else None,
                             facts.last_streak if facts else 0, match)
        total = (facts.total if facts else 0) + 1
        source = "keyword" if event.message_type != "image" else "image"
        actions: list[Action] = [
            RecordCheckin(group_id=ctx.group.id, member_id=ctx.member.id,
                          day=match.isoformat(), streak=streak, source=source,
                          message_id=event.message_id),
            SendText(group_id=ctx.group.id, mention_member_ids=(ctx.member.id,),
                     text=render_template(settings.checkin.reply_template, {
                         "name": ctx.member.name, "streak": str(streak), "total": str(total),
                         "group": ctx.group.name}), reply_to=event.message_id),
        ]
        if settings.points.enabled and settings.points.checkin:
            actions.append(AwardPoints(group_id=ctx.group.id, member_id=ctx.member.id,
                                       points=settings.points.checkin, reason="checkin"))
        return Outcome(actions, stop=True)
