"""The event path from a sandbox payload to stored facts and outbox rows."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, func, select

from qunyun.adapters.storage.tables import (
    groups,
    inbound_events,
    member_events,
    members,
    memberships,
    messages,
    outbox,
)
from qunyun.bootstrap import Runtime
from qunyun.domain.events import DomainEvent
from qunyun.engine import Outcome, Rule, RuleContext
from qunyun.services.ingest import do_ingest_event
from tests.dbhelpers import count, snapshot
from tests.factories import event, raw_join, raw_leave, raw_message


def ingest(conn: Connection, runtime: Runtime, raw: dict[str, object]):  # type: ignore[no-untyped-def]
    """A live event: received as it happens (an old one would be recorded, not answered)."""
    ev = event(raw)
    return do_ingest_event(conn, ev, config=runtime.ingest_config, received_at=ev.occurred_at)


def test_join_creates_member_group_membership_and_history(conn: Connection,
                                                          runtime: Runtime) -> None:
    result = ingest(conn, runtime, raw_join("e1", "g1", "u1", name="张三", inviter="u0",
                                            channel="poster-a"))
    assert not result.duplicate and result.member_id is not None
    number = conn.execute(select(members.c.number).where(members.c.id == result.member_id)
                          ).scalar_one()
    first = conn.execute(select(func.min(members.c.number))).scalar_one()
    assert first >= 10001 and number == first  # the joiner first, then the inviter u0
    m = conn.execute(select(memberships).where(memberships.c.member_id == result.member_id)
                     ).mappings().one()
    assert m["join_scene"] == "invite" and m["channel"] == "poster-a" and m["left_at"] is None
    assert m["inviter_member_id"] is not None and m["join_observed"]
    kinds = conn.execute(select(member_events.c.kind)).scalars().all()
    assert kinds == ["joined"]


def test_replay_changes_nothing(conn: Connection, runtime: Runtime) -> None:
    raw = raw_join("e1", "g1", "u1")
    ingest(conn, runtime, raw)
    before = snapshot(conn)
    again = ingest(conn, runtime, raw)
    assert again.duplicate and again.inbound_event_id is None
    assert snapshot(conn) == before


def test_member_numbers_are_sequential_and_identities_unique(conn: Connection,
                                                            runtime: Runtime) -> None:
    ids = [ingest(conn, runtime, raw_join(f"e{i}", "g1", f"u{i}")).member_id for i in range(5)]
    numbers = conn.execute(select(members.c.number).where(members.c.id.in_(ids))
                           .order_by(members.c.number)).scalars().all()
    assert numbers == list(range(numbers[0], numbers[0] + 5))
    # the same person in another group is the same member
    other = ingest(conn, runtime, raw_join("e9", "g2", "u0")).member_id
    assert other == ids[0]


def test_leave_closes_membership_and_rejoin_opens_a_new_one(conn: Connection,
                                                             runtime: Runtime) -> None:
    mid = ingest(conn, runtime, raw_join("e1", "g1", "u1")).member_id
    ingest(conn, runtime, raw_leave("e2", "g1", "u1", minutes=5, by="owner"))
    ingest(conn, runtime, raw_join("e3", "g1", "u1", minutes=10))
    rows = conn.execute(select(memberships.c.left_at, memberships.c.leave_scene)
                        .where(memberships.c.member_id == mid)
                        .order_by(memberships.c.id)).all()
    assert rows[0].left_at is not None and rows[0].leave_scene == "removed"
    assert rows[1].left_at is None
    kinds = conn.execute(select(member_events.c.kind).where(member_events.c.member_id == mid)
                         .order_by(member_events.c.id)).scalars().all()
    assert kinds == ["joined", "removed", "joined"]


def test_message_stored_once_and_implies_unobserved_membership(conn: Connection,
                                                                runtime: Runtime) -> None:
    ingest(conn, runtime, raw_message("e1", "g1", "u1", "你好", message_id="m1"))
    ingest(conn, runtime, raw_message("e2", "g1", "u1", "你好", message_id="m1"))  # same msg
    assert count(conn, messages) == 1
    observed = conn.execute(select(memberships.c.join_observed)).scalars().all()
    assert observed == [False]


def test_welcome_rule_enqueues_in_same_transaction(conn: Connection, runtime: Runtime) -> None:
    ingest(conn, runtime, raw_join("e0", "g1", "owner"))
    gid = conn.execute(select(groups.c.id)).scalar_one()
    conn.execute(groups.update().values(settings={"welcome_template": "欢迎{name}"}))
    result = ingest(conn, runtime, raw_join("e1", "g1", "u1", name="小明"))
    assert result.rules_fired == ("welcome",)
    row = conn.execute(select(outbox)).mappings().one()
    assert row["status"] == "pending" and row["group_id"] == gid
    assert row["payload"]["text"] == "欢迎小明"
    assert row["idempotency_key"] == "sandbox:e1:welcome:0"
    # rejoining is not greeted twice
    ingest(conn, runtime, raw_leave("e2", "g1", "u1"))
    ingest(conn, runtime, raw_join("e3", "g1", "u1"))
    assert count(conn, outbox) == 1


class Exploding(Rule):
    name = "exploding"

    def run(self, event: DomainEvent, ctx: RuleContext, match: object) -> Outcome:
        raise ValueError("bad rule")


def test_failing_rule_is_recorded_not_fatal(conn: Connection, runtime: Runtime) -> None:
    runtime.rules = [Exploding()]
    result = ingest(conn, runtime, raw_join("e1", "g1", "u1"))
    assert result.rule_errors == ("exploding: ValueError: bad rule",)
    stored = conn.execute(select(inbound_events.c.rule_errors)).scalar_one()
    assert stored == ["exploding: ValueError: bad rule"]
    assert count(conn, memberships) == 1


def test_error_inside_ingest_leaves_database_as_before(conn: Connection,
                                                        runtime: Runtime) -> None:
    ingest(conn, runtime, raw_join("e0", "g1", "u0"))
    before = snapshot(conn)

    def broken_caps(platform: str) -> frozenset:  # type: ignore[type-arg]
        raise RuntimeError("capability lookup failed")

    runtime.capabilities = broken_caps  # type: ignore[method-assign]
    conn.execute(groups.update().values(settings={"welcome_template": "hi"}))
    before = snapshot(conn)
    with pytest.raises(RuntimeError), runtime.uow.write() as tx:
        do_ingest_event(tx, event(raw_join("e1", "g1", "u1")), config=runtime.ingest_config)
    assert snapshot(conn) == before
