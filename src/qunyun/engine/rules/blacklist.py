"""Blacklist enforcement (F4): a blacklisted member is removed from the group.

Runs first (priority -100) and stops lower groups, so nobody greets, answers or counts a
person being removed. On a join they are removed at once; a message from one still in the
group (blacklisted while in it, the removal still waiting for a person) asks for the same
removal again, once per blacklist entry and group, and is otherwise ignored. On platforms
that cannot remove members the outbox turns the removal into a staff task.
"""

from __future__ import annotations

from qunyun.domain.actions import RemoveMember
from qunyun.domain.events import DomainEvent, MemberJoined, MessagePosted
from qunyun.engine.rule import Outcome, Rule, RuleContext
from qunyun.engine.triggers import on


def removal_key(blacklist_id: int, group_id: int) -> str:
    """One removal per blacklist entry and group, however many events ask for it."""
    return f"blacklist:{blacklist_id}:{group_id}"


class BlacklistRule(Rule):
    name = "blacklist"
    priority = -100
    trigger = on(MemberJoined, MessagePosted)

    def matches(self, event: DomainEvent, ctx: RuleContext) -> object | None:
        if not self.trigger(event, ctx) or ctx.member is None or ctx.group is None:
            return None
        return True if ctx.member.blacklisted else None

    def run(self, event: DomainEvent, ctx: RuleContext, match: object) -> Outcome:
        assert ctx.group is not None and ctx.member is not None
        key = (removal_key(ctx.member.blacklist_id, ctx.group.id)
               if ctx.member.blacklist_id is not None else "")
        # a join is removed per join (they may come back again); a message repeats the
        # entry's removal, which the outbox stores once
        return Outcome([RemoveMember(group_id=ctx.group.id, member_id=ctx.member.id,
                                     reason=ctx.member.blacklist_reason or "已拉黑",
                                     blacklisted=True,
                                     key=key if isinstance(event, MessagePosted) else "")],
                       stop=True)
