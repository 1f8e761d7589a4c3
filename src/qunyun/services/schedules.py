"""Database-backed scheduled jobs. A due job becomes a ``ScheduleFired`` event and enters the
same ingest path; firing and advancing the job happen in one transaction, and the event id
(job key + due time) makes a second firing of the same occurrence a no-op."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, select, update

from qunyun.adapters.storage.sql import supports_skip_locked
from qunyun.adapters.storage.tables import groups, scheduled_jobs
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.clock import utcnow
from qunyun.domain.content import parse_when
from qunyun.domain.events import ScheduleFired
from qunyun.services import audit
from qunyun.services.errors import Conflict, InvalidInput
from qunyun.services.ingest import IngestConfig, do_ingest_event

ACTIVE = "active"
PAUSED = "paused"
DONE = "done"


def do_schedule_job(
    conn: Connection, *, key: str, kind: str, run_at: datetime, actor: str = "system",
    every_seconds: int | None = None, payload: dict[str, Any] | None = None,
    group_id: int | None = None, platform: str = "system", recurrence: str | None = None,
    status: str = ACTIVE,
) -> int:
    if run_at.tzinfo is None:
        raise InvalidInput("run_at must be timezone-aware")
    if every_seconds is not None and every_seconds < 1:
        raise InvalidInput("every_seconds must be at least 1")
    if conn.execute(select(scheduled_jobs.c.id).where(scheduled_jobs.c.key == key)).first():
        raise Conflict("a scheduled job with key {key!r} exists", key=key)
    if group_id is not None:
        platform = conn.execute(select(groups.c.platform).where(groups.c.id == group_id)
                                ).scalar() or platform
    job_id = conn.execute(scheduled_jobs.insert().values(
        key=key, kind=kind, platform=platform, group_id=group_id, payload=payload or {},
        next_run_at=run_at, every_seconds=every_seconds, status=status, runs=0,
        created_at=utcnow(), recurrence=recurrence,
    ).returning(scheduled_jobs.c.id)).scalar_one()
    audit.record(conn, actor=actor, action="schedule.create", object_type="scheduled_job",
                 object_id=job_id, detail={"key": key, "kind": kind,
                                           "run_at": run_at.isoformat()})
    return int(job_id)


def fire_due(uow: UnitOfWork, *, config: IngestConfig, now: datetime | None = None,
             limit: int = 50) -> int:
    """Fire due jobs. After downtime a recurring job fires once for the runs it missed
    (coalesced, the number skipped kept in the event) rather than flooding the groups."""
    now = now or utcnow()
    tz = ZoneInfo(config.timezone)
    fired = 0
    while True:
        with uow.write() as conn:
            stmt = (select(scheduled_jobs, groups.c.external_id.label("group_ext"))
                    .outerjoin(groups, groups.c.id == scheduled_jobs.c.group_id)
                    .where(scheduled_jobs.c.status == ACTIVE,
                           scheduled_jobs.c.next_run_at <= now)
                    .order_by(scheduled_jobs.c.next_run_at).limit(limit))
            if supports_skip_locked(conn):
                stmt = stmt.with_for_update(skip_locked=True, of=scheduled_jobs)
            jobs = conn.execute(stmt).mappings().all()
            for job in jobs:
                due: datetime = job["next_run_at"]
                missed = 0
                following: datetime | None = None
                if job["every_seconds"]:
                    missed = int((now - due).total_seconds() // job["every_seconds"])
                    following = due + timedelta(seconds=job["every_seconds"]) * (missed + 1)
                elif job["recurrence"]:
                    when = parse_when(job["recurrence"])
                    missed = len(when.occurrences(due + timedelta(seconds=1), now, tz=tz))
                    nxt = when.next_at(max(due, now) + timedelta(seconds=1), tz=tz)
                    following = nxt[0] if nxt else None
                payload = dict(job["payload"] or {})
                if missed:
                    payload["missed_runs"] = missed
                event = ScheduleFired(
                    platform=job["platform"],
                    external_event_id=f"job:{job['key']}@{due.isoformat()}",
                    occurred_at=due, job_key=job["key"], job_kind=job["kind"],
                    payload=payload, group_external_id=job["group_ext"])
                do_ingest_event(conn, event, config=config, received_at=now)
                values: dict[str, Any] = {"runs": job["runs"] + 1, "last_run_at": now}
                if following is not None:
                    values["next_run_at"] = following
                else:
                    values["status"] = DONE
                conn.execute(update(scheduled_jobs).where(scheduled_jobs.c.id == job["id"])
                             .values(**values))
                fired += 1
        if len(jobs) < limit:
            return fired


def jobs_by_prefix(conn: Connection, prefix: str) -> dict[str, dict[str, Any]]:
    """The jobs whose key starts with ``prefix`` (a playbook's steps), by key."""
    return {r["key"]: dict(r) for r in conn.execute(
        select(scheduled_jobs).where(scheduled_jobs.c.key.startswith(prefix))).mappings()}


def do_put_job(conn: Connection, *, key: str, kind: str, run_at: datetime, status: str,
               payload: dict[str, Any], recurrence: str | None = None) -> None:
    """Create the job, or move an existing one to ``run_at`` with ``status`` (callers that
    keep one job per thing, like playbook steps, re-compute them on every change)."""
    changed = conn.execute(update(scheduled_jobs).where(scheduled_jobs.c.key == key).values(
        next_run_at=run_at, status=status, recurrence=recurrence)).rowcount
    if not changed:
        do_schedule_job(conn, key=key, kind=kind, run_at=run_at, status=status,
                        payload=payload, recurrence=recurrence)


def do_drop_jobs(conn: Connection, keys: list[str]) -> None:
    """Forget jobs entirely (a step given a new time is a new step)."""
    if keys:
        conn.execute(delete(scheduled_jobs).where(scheduled_jobs.c.key.in_(keys)))


def do_set_jobs(conn: Connection, keys: list[str], *, status: str | None = None,
                next_run_at: dict[str, datetime] | None = None) -> int:
    """Pause/resume or move jobs by key (playbooks keep one job per step); done jobs stay
    done, so a step that already ran is never re-run by a change."""
    changed = 0
    for key in keys:
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = status
        if next_run_at and key in next_run_at:
            values["next_run_at"] = next_run_at[key]
        if values:
            changed += conn.execute(update(scheduled_jobs).where(
                scheduled_jobs.c.key == key, scheduled_jobs.c.status != DONE)
                .values(**values)).rowcount
    return changed


def list_jobs(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(
        select(scheduled_jobs).order_by(scheduled_jobs.c.next_run_at)).mappings()]
