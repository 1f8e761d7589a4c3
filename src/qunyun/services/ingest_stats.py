"""Figures about the store for /metrics and `qunyun status` (reads only)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from qunyun.adapters.storage.tables import inbound_events, scheduled_jobs
from qunyun.clock import utcnow
from qunyun.services import members, outbox, tasks


@dataclass
class StoreFigures:
    outbox: dict[str, int]
    inbound_by_platform: dict[str, int]
    open_tasks: int
    members: int
    jobs_due: int


def store_figures(conn: Connection) -> StoreFigures:
    inbound = {p: int(n) for p, n in conn.execute(
        select(inbound_events.c.platform, func.count()).group_by(inbound_events.c.platform))}
    jobs_due = int(conn.execute(select(func.count()).select_from(scheduled_jobs).where(
        scheduled_jobs.c.status == "active",
        scheduled_jobs.c.next_run_at <= utcnow())).scalar_one())
    return StoreFigures(outbox=outbox.outbox_counts(conn), inbound_by_platform=inbound,
                        open_tasks=tasks.count_open_tasks(conn),
                        members=members.count_members(conn), jobs_due=jobs_due)
