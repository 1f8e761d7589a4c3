"""The analytics mirror in use (the copy itself: ``adapters/storage/mirror.py``).

Off by default: a team's own store answers the cohort report in well under 3 s up to
millions of events. With ``QUNYUN_ANALYTICS_MIRROR=1`` the worker refreshes the copy every
``analytics_mirror_minutes`` in a thread of its own (10M events take about a minute, which
must not hold up deliveries), and the cohort report reads the copy wherever it is shown —
dashboard, API, CLI — saying as of when. Before the first refresh, or when the copy cannot
be read, reports read the store.

It changes no stored state, so it lives with the analytics; who may refresh or read it is
checked in ``services/reports.py``. Its dependencies are passed in (the engine, the unit of
work, a ``MirrorSetup``), not the whole runtime.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from qunyun.adapters.storage import mirror as copy
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.config import Settings

log = logging.getLogger(__name__)
_refreshing = threading.Lock()  # one refresh at a time per process


@dataclass(frozen=True, slots=True)
class MirrorSetup:
    enabled: bool
    path: Path
    every_minutes: float

    @classmethod
    def of(cls, settings: Settings) -> MirrorSetup:
        return cls(settings.analytics_mirror, settings.resolved_mirror_path(),
                   settings.analytics_mirror_minutes)


def refresh(engine: Engine, setup: MirrorSetup) -> copy.MirrorInfo:
    """Copy the store into the mirror now, waiting for a refresh already running
    (MirrorError names the file and the cause)."""
    with _refreshing:
        return copy.refresh_from(engine, setup.path)


def status(setup: MirrorSetup) -> dict[str, Any]:
    out: dict[str, Any] = {"enabled": setup.enabled, "path": str(setup.path),
                           "every_minutes": setup.every_minutes,
                           "refreshed_at": None, "rows": None, "error": None,
                           "refreshing": copy.refreshing(setup.path)}  # in any process
    try:
        found = copy.info(setup.path)
    except copy.MirrorError as exc:
        out["error"] = str(exc)
        return out
    if found is not None:
        out["refreshed_at"] = found.refreshed_at.isoformat()
        out["rows"] = found.rows
    return out


@contextmanager
def reading(setup: MirrorSetup, uow: UnitOfWork) -> Iterator[tuple[Connection, datetime | None]]:
    """A connection to read analytics from, and the snapshot time when it is the mirror
    (None: the store itself, as of now)."""
    if setup.enabled:
        try:
            found = copy.info(setup.path)
        except copy.MirrorError as exc:
            log.warning("reading the store instead of the analytics mirror: %s", exc)
            found = None
        if found is not None:
            with copy.connect(setup.path) as conn:
                yield conn, found.refreshed_at
            return
    with uow.read() as conn:
        yield conn, None


def start_refresh(engine: Engine, setup: MirrorSetup) -> bool:
    """Start a refresh in a thread of its own (a copy of 10M events takes about a minute);
    False when one is already running in this process."""
    if not _refreshing.acquire(blocking=False):
        return False

    def run() -> None:
        try:
            found = copy.refresh_from(engine, setup.path)
            log.info("analytics mirror refreshed in %.1f s: %s", found.seconds, found.rows)
        except copy.MirrorError:
            log.exception("analytics mirror refresh failed; the old copy stays")
        finally:
            _refreshing.release()

    threading.Thread(target=run, name="qunyun-analytics-mirror", daemon=True).start()
    return True


def wait_for_refresh(timeout: float) -> bool:
    """Whether a refresh running in this process finished within ``timeout`` seconds (the
    tests wait on the background copy with it)."""
    if not _refreshing.acquire(timeout=timeout):
        return False
    _refreshing.release()
    return True
