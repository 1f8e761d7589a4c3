"""The dissolution SOP on real databases: four steps in order with the gaps, each fired
once by the scheduler and surviving a worker restart between steps; the platform does what
it can (notice, rename) and a person the rest; on WeCom all four are staff tasks; the group
ends closed; called off, the remaining steps do nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Connection, select

from qunyun.adapters.platforms.wecom.adapter import CAPABILITIES as WECOM_CAPABILITIES
from qunyun.adapters.storage.tables import groups, outbox, staff_tasks
from qunyun.bootstrap import Runtime
from qunyun.services import dissolution, lifecycle, schedules
from qunyun.services.errors import Conflict, InvalidInput
from qunyun.services.users import SYSTEM
from qunyun.worker import Worker
from tests.dbhelpers import snapshot
from tests.factories import T0, raw_join
from tests.integration.test_lifecycle import feed

GAP = timedelta(hours=2)


def restarted_worker_at(runtime: Runtime, at: datetime) -> None:
    """A new worker (as after a restart) ticking at ``at``."""
    runtime.now = lambda: at  # type: ignore[method-assign]
    Worker(runtime).tick()


def state(conn: Connection, gid: int) -> str:
    return str(conn.execute(select(groups.c.state).where(groups.c.id == gid)).scalar_one())


def done(conn: Connection) -> list[tuple[str, str]]:
    """What the SOP queued, in order: (action, text or new name or task title)."""
    out = []
    for r in conn.execute(select(outbox.c.action_type, outbox.c.payload, outbox.c.staff_task_id)
                          .where(outbox.c.rule == "dissolution").order_by(outbox.c.id)):
        p = r.payload
        out.append((r.action_type, p.get("text") or p.get("new_name") or p.get("title")))
    return out


def test_four_steps_in_order_with_the_gaps_across_restarts(conn: Connection,
                                                           runtime: Runtime) -> None:
    gid = feed(conn, runtime, [raw_join("j0", "g1", "u0")])
    before = snapshot(conn)
    plan = dissolution.do_dissolve(conn, actor=SYSTEM, group_id=gid, gap=GAP, notice=None,
                                   new_name=None, dry_run=True,
                                   capabilities=runtime.capabilities, now=T0)
    assert [(s["kind"], s["at"] - T0, s["by"]) for s in plan["steps"]] == [
        ("notice", GAP * 0, "platform"), ("avatar", GAP, "staff"),
        ("rename", GAP * 2, "platform"), ("dismiss", GAP * 3, "staff")]
    assert snapshot(conn) == before and state(conn, gid) == "active"
    dissolution.do_dissolve(conn, actor=SYSTEM, group_id=gid, gap=GAP,
                            notice="「{group}」要解散啦，新群见海报", new_name=None,
                            dry_run=False, capabilities=runtime.capabilities, now=T0)
    assert state(conn, gid) == "dissolving"
    with pytest.raises(Conflict):  # once
        dissolution.do_dissolve(conn, actor=SYSTEM, group_id=gid, gap=GAP, notice=None,
                                new_name=None, dry_run=False,
                                capabilities=runtime.capabilities, now=T0)
    restarted_worker_at(runtime, T0 + timedelta(minutes=1))
    assert done(conn) == [("send_text", "「群g1」要解散啦，新群见海报")]
    restarted_worker_at(runtime, T0 + GAP - timedelta(minutes=1))  # not yet
    assert len(done(conn)) == 1
    restarted_worker_at(runtime, T0 + GAP + timedelta(minutes=1))
    restarted_worker_at(runtime, T0 + GAP * 2 + timedelta(minutes=1))
    assert [a for a, _t in done(conn)] == ["send_text", "hand_to_staff", "rename_group"]
    assert done(conn)[2][1] == "社群已解散-后续服务请私信"
    assert state(conn, gid) == "dissolving"
    restarted_worker_at(runtime, T0 + GAP * 3 + timedelta(minutes=1))
    restarted_worker_at(runtime, T0 + GAP * 5)  # nothing fires twice
    assert [a for a, _t in done(conn)] == ["send_text", "hand_to_staff", "rename_group",
                                           "hand_to_staff"]
    titles = conn.execute(select(staff_tasks.c.title).where(
        staff_tasks.c.kind == "hand_to_staff").order_by(staff_tasks.c.id)).scalars().all()
    assert titles == ["把「群g1」的群头像换成灰色", "解散群聊「群g1」"]
    assert state(conn, gid) == "closed"


def test_on_wecom_every_step_is_a_staff_task(conn: Connection, runtime: Runtime) -> None:
    gid = feed(conn, runtime, [raw_join("j0", "g1", "u0")])
    wecom: Callable[[str], frozenset] = lambda _p: WECOM_CAPABILITIES  # type: ignore[type-arg]  # noqa: E731
    plan = dissolution.do_dissolve(conn, actor=SYSTEM, group_id=gid, gap=GAP, notice=None,
                                   new_name=None, dry_run=False, capabilities=wecom, now=T0)
    assert [s["by"] for s in plan["steps"]] == ["staff"] * 4
    config = replace(runtime.ingest_config, capabilities=wecom)
    for i in range(4):
        schedules.fire_due(runtime.uow, config=config, now=T0 + GAP * i + timedelta(minutes=1))
    assert conn.execute(select(outbox.c.status).where(outbox.c.rule == "dissolution")
                        ).scalars().all() == ["staff_task"] * 4
    assert state(conn, gid) == "closed"


def test_called_off_the_rest_does_nothing_and_bad_input_is_refused(
        conn: Connection, runtime: Runtime) -> None:
    gid = feed(conn, runtime, [raw_join("j0", "g1", "u0")])
    for gap in (timedelta(seconds=5), timedelta(days=31)):
        with pytest.raises(InvalidInput):
            dissolution.do_dissolve(conn, actor=SYSTEM, group_id=gid, gap=gap, notice=None,
                                    new_name=None, dry_run=True,
                                    capabilities=runtime.capabilities, now=T0)
    with pytest.raises(InvalidInput):
        dissolution.do_dissolve(conn, actor=SYSTEM, group_id=gid, gap=GAP, notice="",
                                new_name=None, dry_run=True,
                                capabilities=runtime.capabilities, now=T0)
    dissolution.do_dissolve(conn, actor=SYSTEM, group_id=gid, gap=GAP, notice=None,
                            new_name="一期老群", dry_run=False,
                            capabilities=runtime.capabilities, now=T0)
    schedules.fire_due(runtime.uow, config=runtime.ingest_config, now=T0 + timedelta(minutes=1))
    lifecycle.do_set_state(conn, actor=SYSTEM, group_id=gid, state="active",
                           reason="不解散了", now=T0 + timedelta(minutes=5))
    for i in (1, 2, 3):
        schedules.fire_due(runtime.uow, config=runtime.ingest_config,
                           now=T0 + GAP * i + timedelta(minutes=1))
    assert [a for a, _t in done(conn)] == ["send_text"]
    assert state(conn, gid) == "active"
