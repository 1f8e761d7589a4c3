"""The automation snapshot: settings, classifier and FAQ indexes compiled once per change.

Building an Aho-Corasick automaton, a bigram model and BM25 indexes takes milliseconds to
seconds; a message must not. Services build a snapshot when the stored configuration
changes (a version counter) and hand it to the rules in the context, so rules stay pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from qunyun.domain.automation import AutomationSettings
from qunyun.engine.faq import FaqIndex
from qunyun.engine.moderation import Classifier


@dataclass(frozen=True, slots=True)
class FaqAnswer:
    answer: str
    cooldown_seconds: int


@dataclass(frozen=True, slots=True)
class AutomationSnapshot:
    version: int
    team: AutomationSettings
    classifier: Classifier
    faq: FaqIndex
    group_settings: Mapping[int, AutomationSettings] = field(default_factory=dict)
    group_faq: Mapping[int, FaqIndex] = field(default_factory=dict)
    answers: Mapping[str, FaqAnswer] = field(default_factory=dict)

    def settings(self, group_id: int | None) -> AutomationSettings:
        if group_id is None:
            return self.team
        return self.group_settings.get(group_id, self.team)

    def faq_index(self, group_id: int | None) -> FaqIndex:
        if group_id is None:
            return self.faq
        return self.group_faq.get(group_id, self.faq)


def empty_snapshot() -> AutomationSnapshot:
    """Defaults with no lists and no FAQs (tests, and before the first configuration)."""
    return AutomationSnapshot(version=0, team=AutomationSettings(), classifier=Classifier(),
                              faq=FaqIndex([]))
