"""Welcome (F11, first cut): greet a newcomer by @mention with the group's template.

Switched on per group by the ``welcome_template`` setting; a person rejoining is not greeted
again. Batching several joins into one message comes with the automation issue.
"""

from __future__ import annotations

from qunyun.domain.actions import SendText
from qunyun.domain.events import DomainEvent, MemberJoined
from qunyun.engine.rule import Outcome, Rule, RuleContext
from qunyun.engine.triggers import group_setting, on


class _SafeDict(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render_template(template: str, values: dict[str, str]) -> str:
    """Fill ``{name}``-style variables; unknown variables stay visible rather than failing."""
    return template.format_map(_SafeDict(values))


class WelcomeRule(Rule):
    name = "welcome"
    priority = 10
    trigger = on(MemberJoined) & group_setting("welcome_template")

    def matches(self, event: DomainEvent, ctx: RuleContext) -> object | None:
        if not self.trigger(event, ctx) or ctx.member is None or ctx.group is None:
            return None
        if ctx.member.joins_in_group > 1 or ctx.member.blacklisted:
            return None
        return True

    def run(self, event: DomainEvent, ctx: RuleContext, match: object) -> Outcome:
        assert ctx.group is not None and ctx.member is not None
        template = str(ctx.group.settings["welcome_template"])
        text = render_template(
            template,
            {"name": ctx.member.name, "group": ctx.group.name, "rules": ctx.group.rules_text},
        )
        return Outcome([SendText(group_id=ctx.group.id, text=text,
                                 mention_member_ids=(ctx.member.id,))])
