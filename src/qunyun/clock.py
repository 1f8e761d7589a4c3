"""Time in one place. Every stored time comes from ``utcnow`` (aware UTC); anything that
reads local days (segments, lead scores, schedules, reports) takes a ``Clock`` — now and the
team's time zone. The runtime holds where now comes from (``Runtime.now``), so a rehearsal or
a test can run the same code at a fixed time instead of the wall clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Clock:
    """When "now" is and which time zone dates are in (dates are the team's local days)."""

    now: datetime
    tz: ZoneInfo

    def day_start(self, day: date) -> datetime:
        return datetime.combine(day, time(), tzinfo=self.tz)


@dataclass(frozen=True, slots=True)
class FixedTime:
    """A source of now that always answers the same time (``Runtime.now`` for tests and
    rehearsals); ``utcnow`` is the wall clock's."""

    at: datetime

    def __call__(self) -> datetime:
        return self.at
