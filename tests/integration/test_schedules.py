"""Scheduled jobs live in the database, fire through the event path, and survive restarts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import inbound_events, outbox, scheduled_jobs
from qunyun.bootstrap import Runtime
from qunyun.clock import utcnow
from qunyun.domain.actions import SendText
from qunyun.domain.events import DomainEvent, ScheduleFired
from qunyun.engine import Outcome, Rule, RuleContext
from qunyun.engine.triggers import on
from qunyun.services import schedules
from qunyun.services.errors import Conflict, InvalidInput
from qunyun.services.ingest import do_ingest_event
from tests.factories import event, raw_join


class MorningReport(Rule):
    name = "morning"
    trigger = on(ScheduleFired)

    def run(self, event: DomainEvent, ctx: RuleContext, match: object) -> Outcome:
        assert isinstance(event, ScheduleFired) and ctx.group is not None
        missed = event.payload.get("missed_runs", 0)
        return Outcome([SendText(group_id=ctx.group.id, text=f"早报 missed={missed}")])


def group_id(conn: Connection, runtime: Runtime) -> int:
    gid = do_ingest_event(conn, event(raw_join("s", "g1", "u1")),
                          config=runtime.ingest_config).group_id
    assert gid is not None
    return gid


def test_one_off_job_fires_once(conn: Connection, runtime: Runtime) -> None:
    runtime.rules = [MorningReport()]
    gid = group_id(conn, runtime)
    now = utcnow()
    schedules.do_schedule_job(conn, key="daily-1", kind="morning_report", group_id=gid,
                              run_at=now - timedelta(seconds=1))
    assert schedules.fire_due(runtime.uow, config=runtime.ingest_config, now=now) == 1
    assert schedules.fire_due(runtime.uow, config=runtime.ingest_config, now=now) == 0
    job = conn.execute(select(scheduled_jobs)).mappings().one()
    assert job["status"] == "done" and job["runs"] == 1
    texts = conn.execute(select(outbox.c.payload)).scalars().all()
    assert [t["text"] for t in texts] == ["早报 missed=0"]
    assert conn.execute(select(outbox.c.platform)).scalar_one() == "sandbox"


def test_recurring_job_coalesces_missed_runs_after_downtime(conn: Connection,
                                                            runtime: Runtime) -> None:
    runtime.rules = [MorningReport()]
    gid = group_id(conn, runtime)
    start = utcnow() - timedelta(hours=3, minutes=30)
    schedules.do_schedule_job(conn, key="hourly", kind="report", group_id=gid, run_at=start,
                              every_seconds=3600)
    now = utcnow()
    assert schedules.fire_due(runtime.uow, config=runtime.ingest_config, now=now) == 1
    job = conn.execute(select(scheduled_jobs)).mappings().one()
    assert job["next_run_at"] > now and job["next_run_at"] - now <= timedelta(hours=1)
    assert job["next_run_at"] == start + timedelta(hours=4)
    texts = [p["text"] for p in conn.execute(select(outbox.c.payload)).scalars()]
    assert texts == ["早报 missed=3"]
    assert conn.execute(select(inbound_events.c.event_kind)
                        .where(inbound_events.c.event_kind == "ScheduleFired")).scalar_one()


def test_job_due_while_down_fires_on_the_next_runtime(conn: Connection,
                                                      runtime: Runtime) -> None:
    """A job stored before a 'restart' fires when a new worker looks, nothing in memory."""
    runtime.rules = [MorningReport()]
    gid = group_id(conn, runtime)
    run_at = utcnow() + timedelta(minutes=5)
    schedules.do_schedule_job(conn, key="later", kind="report", group_id=gid, run_at=run_at)
    assert schedules.fire_due(runtime.uow, config=runtime.ingest_config) == 0
    assert schedules.fire_due(runtime.uow, config=runtime.ingest_config,
                              now=run_at + timedelta(hours=2)) == 1


def test_bad_schedules_are_refused(conn: Connection, runtime: Runtime) -> None:
    now = utcnow()
    schedules.do_schedule_job(conn, key="k", kind="x", run_at=now)
    with pytest.raises(Conflict):
        schedules.do_schedule_job(conn, key="k", kind="x", run_at=now)
    with pytest.raises(InvalidInput):
        schedules.do_schedule_job(conn, key="n", kind="x", run_at=now.replace(tzinfo=None))
    with pytest.raises(InvalidInput):
        schedules.do_schedule_job(conn, key="e", kind="x", run_at=now, every_seconds=0)
