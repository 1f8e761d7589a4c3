"""Late events are recorded and counted, never answered (SQLite and PostgreSQL): a worker
back after an outage, a replayed backlog, history loaded into a new install."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import Connection, func, select

from qunyun.adapters.storage.tables import (
    checkins,
    groups,
    inbound_events,
    messages,
    moderation_decisions,
    outbox,
)
from qunyun.bootstrap import Runtime
from qunyun.services import automation
from qunyun.services import outbox as outbox_service
from qunyun.services.ingest import do_ingest_event
from qunyun.services.users import SYSTEM
from tests.factories import T0, event, raw_join, raw_message

AD = "兼职刷单日结300，加微信 abc_12345 详聊"


def setting(conn: Connection, section: str, **values: object) -> None:
    automation.do_update_settings(conn, actor=SYSTEM, section=section, values=values)


def test_a_backlog_replayed_after_an_outage_is_counted_not_answered(
        conn: Connection, runtime: Runtime) -> None:
    setting(conn, "moderation", enabled=True)
    setting(conn, "checkin", enabled=True)
    setting(conn, "faq", enabled=True)
    # the group greets newcomers
    first = do_ingest_event(conn, event(raw_join("j0", "g1", "owner")),
                            config=runtime.ingest_config, received_at=T0)
    conn.execute(groups.update().where(groups.c.id == first.group_id)
                 .values(settings={"welcome_template": "欢迎{name}"}))
    back = T0 + timedelta(days=2)  # the worker was down for two days
    replayed = [
        raw_join("j1", "g1", "u1", name="新人", minutes=5),
        raw_message("m1", "g1", "u2", "打卡", minutes=6),
        raw_message("m2", "g1", "spam", AD, minutes=7),
    ]
    results = [do_ingest_event(conn, event(r), config=runtime.ingest_config, received_at=back)
               for r in replayed]
    # the rules still decided (recorded: a check-in, a flagged ad) …
    assert [r.rules_fired for r in results] == [("welcome",), ("checkin",), ("moderation",)]
    assert conn.execute(select(func.count()).select_from(checkins)).scalar_one() == 1
    decision = conn.execute(select(moderation_decisions)).mappings().one()
    assert decision["action"] == "none" and "消息已过处理时限，只记录不处理" in decision["reasons"]
    # … but nobody is greeted, replied to or warned about it two days later
    assert [r.outbox_ids for r in results] == [[], [], []]
    assert [r.stale for r in results] == [("send_text",), ("send_text",), ()]
    assert conn.execute(select(func.sum(inbound_events.c.stale_actions))).scalar_one() == 2
    assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 2


def test_removals_may_come_hours_late_replies_only_minutes(conn: Connection,
                                                          runtime: Runtime) -> None:
    setting(conn, "moderation", enabled=True, escalation=["remove"])
    setting(conn, "freshness", reply_minutes=10, action_hours=6)
    late = do_ingest_event(conn, event(raw_message("a1", "g1", "s1", AD)),
                           config=runtime.ingest_config, received_at=T0 + timedelta(hours=2))
    assert sorted(r.action_type for r in conn.execute(select(outbox.c.action_type).where(
        outbox.c.id.in_(late.outbox_ids)))) == ["delete_message", "remove_member"]
    too_late = do_ingest_event(conn, event(raw_message("a2", "g1", "s2", AD)),
                               config=runtime.ingest_config,
                               received_at=T0 + timedelta(hours=7))
    assert too_late.outbox_ids == []
    assert [d for (d,) in conn.execute(select(moderation_decisions.c.action).order_by(
        moderation_decisions.c.id))] == ["remove", "none"]


def test_a_reply_that_waited_past_its_window_expires_instead_of_going_out(
        conn: Connection, runtime: Runtime) -> None:
    setting(conn, "checkin", enabled=True)
    r = do_ingest_event(conn, event(raw_message("c1", "g1", "u1", "打卡")),
                        config=runtime.ingest_config, received_at=T0)
    row = conn.execute(select(outbox).where(outbox.c.id.in_(r.outbox_ids))).mappings().one()
    assert row["expires_at"] == T0 + timedelta(minutes=10)
    # the worker comes back long after (it runs at the real clock, days after T0)
    stats = outbox_service.deliver_due(runtime.uow, adapters=runtime.adapters,
                                       limiter=runtime.limiter, worker_id="w",
                                       policy=runtime.policy, rng=random.Random(1))
    assert stats.delivered == 0
    row = conn.execute(select(outbox).where(outbox.c.id.in_(r.outbox_ids))).mappings().one()
    assert row["status"] == "expired"
    assert runtime.adapters["sandbox"].store.counts() == (0, 0)  # type: ignore[attr-defined]


def test_the_window_is_a_team_setting(conn: Connection) -> None:
    import pytest

    from qunyun.services.errors import InvalidInput

    with pytest.raises(InvalidInput, match="team setting"):
        automation.do_update_settings(conn, actor=SYSTEM, group_id=1, section="freshness",
                                      values={"reply_minutes": 5})
    with pytest.raises(InvalidInput, match="reply_minutes"):
        setting(conn, "freshness", reply_minutes=0)
