"""Evaluate rules for one event: priority groups, one firing per group, Stop, isolation."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby

from qunyun.domain.actions import Action
from qunyun.domain.events import DomainEvent
from qunyun.engine.rule import Rule, RuleContext

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RuleError:
    rule: str
    error: str


@dataclass(frozen=True, slots=True)
class Evaluation:
    actions: tuple[tuple[str, Action], ...]  # (rule name, action)
    fired: tuple[str, ...]
    errors: tuple[RuleError, ...]
    stopped_by: str | None = None


@lru_cache(maxsize=64)
def _priority_groups(rules: tuple[Rule, ...], kind: type
                     ) -> tuple[tuple[Rule, ...], ...]:
    """The rules whose trigger admits ``kind``, in priority groups — worked out once per rule
    set and event class (it is the same for every message; sorting it each time was a tenth
    of the engine's time, and asking a join rule about every message another 3 %)."""
    ordered = sorted((r for r in rules if r.trigger.admits(kind)),
                     key=lambda r: r.priority)  # stable: registration order within a group
    return tuple(tuple(group) for _p, group in groupby(ordered, key=lambda r: r.priority))


def evaluate(event: DomainEvent, ctx: RuleContext, rules: Iterable[Rule]) -> Evaluation:
    """Run the rules for ``event``; a rule that raises is logged, skipped and reported."""
    actions: list[tuple[str, Action]] = []
    fired: list[str] = []
    errors: list[RuleError] = []
    # typed as a plain type: mypy reads a dataclass's instance __hash__ into its class
    kind: type = type(event)
    for group in _priority_groups(tuple(rules), kind):
        stop = False
        for rule in group:
            try:
                match = rule.matches(event, ctx)
                if match is None:
                    continue
                outcome = rule.run(event, ctx, match)
            except Exception as exc:  # isolation: one bad rule must not block the others
                log.exception("rule %s failed on %s", rule.name, event.kind)
                errors.append(RuleError(rule.name, f"{type(exc).__name__}: {exc}"))
                continue
            fired.append(rule.name)
            for action in outcome.actions:  # (a loop: a generator cost more than one action)
                actions.append((rule.name, action))
            stop = outcome.stop
            break
        if stop:
            return Evaluation(tuple(actions), tuple(fired), tuple(errors), stopped_by=fired[-1])
    return Evaluation(tuple(actions), tuple(fired), tuple(errors))
