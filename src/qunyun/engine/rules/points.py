"""Points (F14): points for chosen behaviours — a message (capped per day) and bringing a
member in. Check-in points are awarded by the check-in rule. The group's owner, admins and
the team's staff earn none: the leaderboard is the members'."""

from __future__ import annotations

from qunyun.domain.actions import AwardPoints
from qunyun.domain.events import DomainEvent, MemberJoined, MessagePosted
from qunyun.engine.rule import Outcome, Rule, RuleContext
from qunyun.engine.triggers import on


class PointsRule(Rule):
    name = "points"
    priority = 20
    trigger = on(MessagePosted, MemberJoined)

    def matches(self, event: DomainEvent, ctx: RuleContext) -> object | None:
        if ctx.automation is None or ctx.group is None or not self.trigger(event, ctx):
            return None
        cfg = ctx.automation.settings(ctx.group.id).points
        if not cfg.enabled:
            return None
        if isinstance(event, MessagePosted):
            if ctx.member is None or not cfg.message or ctx.member.staff:
                return None  # the team's own people are not on the leaderboard
            room = cfg.message_daily_cap - ctx.points_today
            points = min(cfg.message, room)
            return AwardPoints(group_id=ctx.group.id, member_id=ctx.member.id, points=points,
                               reason="message") if points > 0 else None
        if ctx.inviter is None or ctx.member is None or not cfg.invite or ctx.inviter.staff:
            return None  # inviting is a staff member's job, not a game
        if ctx.member.joins_in_group > 1 or ctx.inviter.id == ctx.member.id:
            return None  # a rejoin earns nothing
        return AwardPoints(group_id=ctx.group.id, member_id=ctx.inviter.id,
                           points=cfg.invite, reason="invite")

    def run(self, event: DomainEvent, ctx: RuleContext, match: object) -> Outcome:
        assert isinstance(match, AwardPoints)
        return Outcome([match])
