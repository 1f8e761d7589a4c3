"""Built-in rules. ``default_rules()`` is what bootstrap registers."""

from qunyun.engine.rule import Rule
from qunyun.engine.rules.blacklist import BlacklistRule
from qunyun.engine.rules.welcome import WelcomeRule


def default_rules() -> list[Rule]:
    return [BlacklistRule(), WelcomeRule()]


__all__ = ["BlacklistRule", "WelcomeRule", "default_rules"]
