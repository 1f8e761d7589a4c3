"""Blacklist enforcement (F4): a blacklisted member who joins a group is removed.

Runs first (priority -100) and stops lower groups, so nobody greets a person being removed.
On platforms that cannot remove members the outbox turns the action into a staff task.
"""

from __future__ import annotations

from qunyun.domain.actions import RemoveMember
from qunyun.domain.events import DomainEvent, MemberJoined
from qunyun.engine.rule import Outcome, Rule, RuleContext
from qunyun.engine.triggers import on


class BlacklistRule(Rule):
    name = "blacklist"
    priority = -100
    trigger = on(MemberJoined)

    def matches(self, event: DomainEvent, ctx: RuleContext) -> object | None:
        if not self.trigger(event, ctx) or ctx.member is None or ctx.group is None:
            return None
        return True if ctx.member.blacklisted else None

    def run(self, event: DomainEvent, ctx: RuleContext, match: object) -> Outcome:
        assert ctx.group is not None and ctx.member is not None
        return Outcome([RemoveMember(group_id=ctx.group.id, member_id=ctx.member.id,
                                     reason=ctx.member.blacklist_reason or "blacklisted")],
                       stop=True)
