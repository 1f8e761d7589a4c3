"""Freshness (pure): whether an action still makes sense this long after its event.

Rules see every event, also ones that arrive late: a worker back after an outage, a backlog
replayed, history loaded into a new install. Such events are recorded and counted, but
nobody is answered for them: a check-in reply or a warning for a message of last week, a
greeting for someone who joined yesterday, is wrong on every platform. Replies (and
warnings, greetings) must go out within minutes of their event, removals and hand-offs
within hours; pushes and enforcing a member's standing (a blacklist) have no deadline.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from qunyun.domain.actions import Action
from qunyun.domain.automation import FreshnessSettings


def window(action: Action, cfg: FreshnessSettings) -> timedelta | None:
    """How long after its event ``action`` may still happen (None: any time)."""
    kind = action.timeliness()
    if kind == "reply":
        return timedelta(minutes=cfg.reply_minutes)
    if kind == "act":
        return timedelta(hours=cfg.action_hours)
    return None


def is_stale(action: Action, age: timedelta, cfg: FreshnessSettings) -> bool:
    limit = window(action, cfg)
    return limit is not None and age > limit


def expires_at(action: Action, event_at: datetime, cfg: FreshnessSettings) -> datetime | None:
    """When a stored action stops being worth sending (a batched greeting waits its window
    first, so it gets that much longer)."""
    limit = window(action, cfg)
    if limit is None:
        return None
    return event_at + limit + timedelta(seconds=getattr(action, "batch_seconds", 0) or 0)


def split_stale(actions: Sequence[tuple[str, Action]], age: timedelta,
                cfg: FreshnessSettings) -> tuple[list[tuple[str, Action]],
                                                 list[tuple[str, Action]]]:
    """(fresh, stale): internal effects are always fresh (the event is still recorded)."""
    fresh: list[tuple[str, Action]] = []
    stale: list[tuple[str, Action]] = []
    for pair in actions:
        (stale if is_stale(pair[1], age, cfg) else fresh).append(pair)
    return fresh, stale
