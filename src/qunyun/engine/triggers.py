"""Composable predicates over (event, context), combined with ``&``, ``|`` and ``~``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from qunyun.domain.events import DomainEvent, MessagePosted

if TYPE_CHECKING:
    from qunyun.engine.rule import RuleContext

Predicate = Callable[[DomainEvent, "RuleContext"], bool]


Kinds = tuple[type[DomainEvent], ...] | None  # None: any kind of event


class Trigger:
    """A named predicate; cheap to test, so rules can skip most events without work.

    ``kinds`` declares the event classes the predicate can be true for (None: any), so the
    dispatcher can leave a rule out for every other kind without calling it. ``&`` keeps
    the kinds both sides allow, ``|`` either side's, ``~`` cannot know and allows any.
    """

    __slots__ = ("_fn", "kinds", "name")

    def __init__(self, fn: Predicate, name: str, kinds: Kinds = None) -> None:
        self._fn = fn
        self.name = name
        self.kinds = kinds

    def admits(self, kind: type) -> bool:
        """Whether an event of class ``kind`` can satisfy this trigger."""
        return self.kinds is None or issubclass(kind, self.kinds)

    def __call__(self, event: DomainEvent, ctx: RuleContext) -> bool:
        return self._fn(event, ctx)

    def __and__(self, other: Trigger) -> Trigger:
        if self.kinds is None or other.kinds is None:
            kinds = self.kinds if other.kinds is None else other.kinds
        else:
            kinds = tuple(k for k in self.kinds if issubclass(k, other.kinds)) + tuple(
                k for k in other.kinds if issubclass(k, self.kinds) and k not in self.kinds)
        return Trigger(lambda e, c: self(e, c) and other(e, c), f"({self.name} & {other.name})",
                       kinds)

    def __or__(self, other: Trigger) -> Trigger:
        kinds = (None if self.kinds is None or other.kinds is None
                 else self.kinds + tuple(k for k in other.kinds if k not in self.kinds))
        return Trigger(lambda e, c: self(e, c) or other(e, c), f"({self.name} | {other.name})",
                       kinds)

    def __invert__(self) -> Trigger:
        return Trigger(lambda e, c: not self(e, c), f"~{self.name}")

    def __repr__(self) -> str:
        return f"Trigger({self.name})"


def on(*kinds: type[DomainEvent]) -> Trigger:
    names = ",".join(k.__name__ for k in kinds)
    return Trigger(lambda e, c: isinstance(e, kinds), f"on({names})", kinds)


def text_contains(*needles: str) -> Trigger:
    def check(event: DomainEvent, ctx: RuleContext) -> bool:
        return isinstance(event, MessagePosted) and any(n in event.text for n in needles)

    return Trigger(check, f"text_contains({'|'.join(needles)})", (MessagePosted,))


def text_matches(pattern: str) -> Trigger:
    compiled = re.compile(pattern)

    def check(event: DomainEvent, ctx: RuleContext) -> bool:
        return isinstance(event, MessagePosted) and compiled.search(event.text) is not None

    return Trigger(check, f"text_matches({pattern})", (MessagePosted,))


def group_setting(key: str) -> Trigger:
    """True when the event's group has a truthy setting ``key`` (rules switched on per group)."""

    def check(event: DomainEvent, ctx: RuleContext) -> bool:
        return ctx.group is not None and bool(ctx.group.settings.get(key))

    return Trigger(check, f"group_setting({key})")


always = Trigger(lambda e, c: True, "always")
