"""Built-in rules. ``default_rules()`` is what bootstrap registers.

Priority groups (lower first, at most one rule fires per group, a Stop ends the run):
-110 entry gate (join requests) · -100 blacklist · -20 check-in · -10 moderation · 0 FAQ ·
5 join floods · 10 welcome · 20 points.
"""

from qunyun.engine.rule import Rule
from qunyun.engine.rules.blacklist import BlacklistRule
from qunyun.engine.rules.checkin import CheckinRule
from qunyun.engine.rules.entry import EntryGateRule
from qunyun.engine.rules.faq import FaqRule
from qunyun.engine.rules.moderation import JoinFloodRule, ModerationRule, NameRule
from qunyun.engine.rules.points import PointsRule
from qunyun.engine.rules.welcome import WelcomeRule


def default_rules() -> list[Rule]:
    return [EntryGateRule(), BlacklistRule(), CheckinRule(), ModerationRule(), NameRule(),
            FaqRule(), JoinFloodRule(), WelcomeRule(), PointsRule()]


__all__ = ["BlacklistRule", "CheckinRule", "EntryGateRule", "FaqRule", "JoinFloodRule",
           "ModerationRule", "NameRule", "PointsRule", "WelcomeRule", "default_rules"]
