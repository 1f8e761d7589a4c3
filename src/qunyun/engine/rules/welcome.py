"""Welcome (F11): greet newcomers by @mention with the group's template.

Variables: ``{name}`` (nickname), ``{group}``, ``{rules}`` and ``{campaign}`` (the current
campaign message from the automation settings). With ``batch_seconds`` set, everyone who
joins within that window of the first newcomer is greeted in one message (the outbox merges
the waiting send). A person who rejoins a group is never greeted twice.
"""

from __future__ import annotations

from qunyun.domain.actions import SendText, fill_names
from qunyun.domain.events import DomainEvent, MemberJoined
from qunyun.engine.rule import Outcome, Rule, RuleContext
from qunyun.engine.triggers import group_setting, on

WELCOME_BATCH = "welcome"


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
        if ctx.member.joins_in_group > 1 or ctx.member.blacklisted or ctx.member.staff:
            return None  # a rejoin, someone being removed, or one of the team's own people
        if ctx.automation is not None and not ctx.automation.settings(
                ctx.group.id).welcome.enabled:
            return None
        return True

    def run(self, event: DomainEvent, ctx: RuleContext, match: object) -> Outcome:
        assert ctx.group is not None and ctx.member is not None
        settings = ctx.automation.settings(ctx.group.id).welcome if ctx.automation else None
        # everything but the name filled now; the name (or names, when batched) last
        template = render_template(str(ctx.group.settings["welcome_template"]), {
            "group": ctx.group.name, "rules": ctx.group.rules_text,
            "campaign": settings.campaign_message if settings else ""})
        names = (ctx.member.name,)
        batch = settings.batch_seconds if settings else 0
        return Outcome([SendText(
            group_id=ctx.group.id, text=fill_names(template, names),
            mention_member_ids=(ctx.member.id,), names=names,
            template=template if batch else "", batch_key=WELCOME_BATCH if batch else "",
            batch_seconds=batch)])
