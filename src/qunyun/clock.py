"""Time in one place. Every stored time comes from ``utcnow`` (aware UTC); anything that
reads local days (segments, lead scores, schedules, reports) takes a ``Clock`` — now and the
team's time zone. The runtime holds where now comes from (``Runtime.now``), so a rehearsal or
a test can run the same code at a fixed time instead of the wall clock.

Services stamp rows with ``utcnow()`` rather than taking ``now`` through every signature:
inside a transaction of the runtime's unit of work, ``utcnow`` reads the runtime's source
(``reading``), so a fixed time reaches every ``created_at`` without patching anything."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo


def wall_clock() -> datetime:
    """The machine's time, aware UTC: the default source of now."""
    return datetime.now(UTC)


_source: ContextVar[Callable[[], datetime]] = ContextVar("qunyun_now", default=wall_clock)


def utcnow() -> datetime:
    """Now, from the source in effect (the wall clock unless ``reading`` set another)."""
    return _source.get()()


@contextmanager
def reading(source: Callable[[], datetime]) -> Iterator[None]:
    """Within the block, ``utcnow`` answers from ``source`` (the unit of work sets the
    runtime's for each transaction; a test can freeze time with ``FixedTime``)."""
    previous = _source.get()
    _source.set(source)
    try:
        yield
    finally:
        # set back rather than reset by token: a request's connection dependency may be
        # closed from another context than the one that opened it
        _source.set(previous)


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
