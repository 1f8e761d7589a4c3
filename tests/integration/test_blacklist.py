"""The blacklist: a blacklisted member is removed on joining and refused enrolment. Both
databases, through services in the test's transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, select

from qunyun.adapters.platforms.sandbox.adapter import SandboxAdapter
from qunyun.adapters.platforms.sandbox.send import SandboxStore
from qunyun.adapters.storage.tables import (
    audit_log,
    identities,
    outbox,
    staff_tasks,
)
from qunyun.bootstrap import Runtime
from qunyun.services import (
    blacklist,
    segments,
)
from qunyun.services.ingest import do_ingest_event
from qunyun.services.users import SYSTEM
from tests.crm_scenario import VIEWER, clock
from tests.factories import event, raw_join


def test_blacklisted_member_is_removed_on_join_and_refused_enrolment(
        conn: Connection, runtime: Runtime, seeded: dict[str, int], tmp_path: Path) -> None:
    do_ingest_event(conn, event(raw_join("j-x", "newgrp", "spam", name="广告哥")),
                    config=runtime.ingest_config)
    spammer = conn.execute(select(identities.c.member_id).where(
        identities.c.external_id == "spam")).scalar_one()
    entry = blacklist.do_blacklist(conn, actor=SYSTEM, member_id=spammer, reason="发广告",
                                   expires_at=datetime.now(UTC) + timedelta(days=30),
                                   capabilities=runtime.capabilities)
    # blacklisting removes them from the group they are in now, not only on a next join
    assert conn.execute(select(outbox.c.action_type, outbox.c.group_id).where(
        outbox.c.id.in_(entry.outbox_ids))).one().action_type == "remove_member"
    result = do_ingest_event(conn, event(raw_join("j-y", "math1", "spam", minutes=900)),
                             config=runtime.ingest_config)
    assert result.rules_fired == ("blacklist",)  # stopped: no welcome for a removed person
    row = conn.execute(select(outbox.c.action_type, outbox.c.payload, outbox.c.rule)
                       .where(outbox.c.id.in_(result.outbox_ids))).one()
    assert row.action_type == "remove_member" and row.payload["reason"] == "发广告"
    with pytest.raises(blacklist.Refused, match=r"blacklisted until .*: 发广告"):
        blacklist.ensure_may_enrol(conn, member_id=spammer, at=datetime.now(UTC))
    assert segments.count_expression(conn, actor=VIEWER, expression="blacklisted",
                                     clock=clock()) == 1

    # where the platform cannot remove members, the removal becomes a staff task
    runtime.adapters["sandbox"] = SandboxAdapter(SandboxStore(str(tmp_path / "w.db")),
                                                 profile="wecom")
    result = do_ingest_event(conn, event(raw_join("j-z", "math2", "spam", minutes=901)),
                             config=runtime.ingest_config)
    task = conn.execute(select(staff_tasks.c.kind, staff_tasks.c.member_id)
                        .join(outbox, outbox.c.staff_task_id == staff_tasks.c.id)
                        .where(outbox.c.id.in_(result.outbox_ids))).one()
    assert task.member_id == spammer

    blacklist.do_lift(conn, actor=SYSTEM, member_id=spammer, reason="申诉通过")
    result = do_ingest_event(conn, event(raw_join("j-w", "eng", "spam", minutes=902)),
                             config=runtime.ingest_config)
    assert "blacklist" not in result.rules_fired
    blacklist.ensure_may_enrol(conn, member_id=spammer, at=datetime.now(UTC))
    actions = [a for (a,) in conn.execute(select(audit_log.c.action).where(
        audit_log.c.object_id == str(spammer)))]
    assert actions == ["member.blacklist", "member.unblacklist"]
