"""The pure rule engine: ``evaluate(event, ctx, rules) -> Evaluation``. No I/O here."""

from qunyun.engine.dispatcher import Evaluation, RuleError, evaluate
from qunyun.engine.rule import EntryFacts, GroupFacts, MemberFacts, Outcome, Rule, RuleContext

__all__ = [
    "EntryFacts",
    "Evaluation",
    "GroupFacts",
    "MemberFacts",
    "Outcome",
    "Rule",
    "RuleContext",
    "RuleError",
    "evaluate",
]
