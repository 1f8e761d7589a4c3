"""The analytics mirror in use (the copy itself: ``adapters/storage/mirror.py``).

Off by default: a team's own store answers the cohort report in well under 3 s up to
millions of events. With ``QUNYUN_ANALYTICS_MIRROR=1`` the worker refreshes the copy every
``analytics_mirror_minutes`` in a thread of its own (10M events take about a minute, which
must not hold up deliveries), and the cohort report reads the copy wherever it is shown —
dashboard, API, CLI — saying as of when. Before the first refresh, or when the copy cannot
be read, reports read the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from qunyun.adapters.storage import mirror
from qunyun.domain.staff import Permission
from qunyun.services.reports import get_cohort_report
from qunyun.services.users import Actor

if TYPE_CHECKING:  # bootstrap builds the worker's jobs from this module
    from qunyun.bootstrap import Runtime

log = logging.getLogger(__name__)
_refreshing = threading.Lock()  # one refresh at a time per process


def do_refresh_mirror(runtime: Runtime, *, actor: Actor) -> mirror.MirrorInfo:
    """Copy the store into the mirror now (MirrorError names the file and the cause)."""
    actor.require(Permission.OPERATE)
    path = runtime.settings.resolved_mirror_path()
    with _refreshing:
        return mirror.refresh_from(runtime.engine, path)


def mirror_status(runtime: Runtime, *, actor: Actor) -> dict[str, Any]:
    actor.require(Permission.VIEW)
    path = runtime.settings.resolved_mirror_path()
    out: dict[str, Any] = {"enabled": runtime.settings.analytics_mirror, "path": str(path),
                           "every_minutes": runtime.settings.analytics_mirror_minutes,
                           "refreshed_at": None, "rows": None, "error": None,
                           "refreshing": mirror.refreshing(path)}  # in any process
    try:
        found = mirror.info(path)
    except mirror.MirrorError as exc:
        out["error"] = str(exc)
        return out
    if found is not None:
        out["refreshed_at"] = found.refreshed_at.isoformat()
        out["rows"] = found.rows
    return out


@contextmanager
def analytics_read(runtime: Runtime) -> Iterator[tuple[Connection, datetime | None]]:
    """A connection to read analytics from, and the snapshot time when it is the mirror
    (None: the store itself, as of now)."""
    if runtime.settings.analytics_mirror:
        path = runtime.settings.resolved_mirror_path()
        try:
            found = mirror.info(path)
        except mirror.MirrorError as exc:
            log.warning("reading the store instead of the analytics mirror: %s", exc)
            found = None
        if found is not None:
            with mirror.connect(path) as conn:
                yield conn, found.refreshed_at
            return
    with runtime.uow.read() as conn:
        yield conn, None


def do_start_refresh(runtime: Runtime, *, actor: Actor) -> bool:
    """Start a refresh in the background (for the dashboard and the API: a copy of 10M
    events takes about a minute); False when one is already running."""
    actor.require(Permission.OPERATE)
    return _start_refresh(runtime)


def refresh_when_due(runtime: Runtime) -> int:
    """The worker's periodic job: start a refresh in a thread unless one is running."""
    _start_refresh(runtime)
    return 0


def _start_refresh(runtime: Runtime) -> bool:
    if not _refreshing.acquire(blocking=False):
        return False

    def run() -> None:
        try:
            found = mirror.refresh_from(runtime.engine, runtime.settings.resolved_mirror_path())
            log.info("analytics mirror refreshed in %.1f s: %s", found.seconds, found.rows)
        except mirror.MirrorError:
            log.exception("analytics mirror refresh failed; the old copy stays")
        finally:
            _refreshing.release()

    threading.Thread(target=run, name="qunyun-analytics-mirror", daemon=True).start()
    return True


def read_cohorts(runtime: Runtime, *, actor: Actor, **options: Any) -> dict[str, Any]:
    """``analytics.cohorts.cohort_report`` from the mirror when it is in use, else from the
    store; ``as_of`` says the snapshot's time (None: live)."""
    with analytics_read(runtime) as (conn, as_of):
        report = get_cohort_report(conn, actor=actor, tz=runtime.settings.tz, **options)
    report["as_of"] = as_of.isoformat() if as_of is not None else None
    return report
