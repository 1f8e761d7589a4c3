"""Delivery: success, retries, dead rows, staff tasks for missing capabilities, lease recovery."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, update

from qunyun.adapters.platforms.base import (
    Delivery,
    ParseResult,
    PermanentSendError,
    PlatformAdapter,
    Receipt,
    TransientSendError,
)
from qunyun.adapters.platforms.sandbox import SandboxAdapter
from qunyun.adapters.platforms.sandbox.send import SandboxStore
from qunyun.adapters.ratelimit import LocalRateLimiter
from qunyun.adapters.storage.tables import groups, messages, outbox, staff_tasks
from qunyun.bootstrap import Runtime
from qunyun.clock import utcnow
from qunyun.domain.actions import Capability, RemoveMember, SendText
from qunyun.services import outbox as outbox_service
from qunyun.services.errors import Conflict
from qunyun.services.ingest import do_ingest_event
from qunyun.services.users import SYSTEM
from tests.factories import event, raw_join


class Flaky(PlatformAdapter):
    """A platform that fails ``failures`` times, transiently or permanently, then accepts."""

    name = "flaky"

    def __init__(self, failures: int, permanent: bool = False) -> None:
        self.capabilities = frozenset(Capability)
        self.failures = failures
        self.permanent = permanent
        self.sent: list[str] = []

    def parse(self, raw: Any) -> ParseResult:
        return ParseResult()

    def send(self, delivery: Delivery) -> Receipt:
        if self.failures:
            self.failures -= 1
            if self.permanent:
                raise PermanentSendError("group dissolved")
            raise TransientSendError("platform busy")
        self.sent.append(delivery.idempotency_key)
        return Receipt(platform_message_id=f"f{len(self.sent)}")


def seed_group(conn: Connection, runtime: Runtime, platform: str = "sandbox") -> tuple[int, int]:
    result = do_ingest_event(conn, event(raw_join("seed", "g1", "u1", name="张三")),
                             config=runtime.ingest_config)
    if platform != "sandbox":
        conn.execute(update(groups).values(platform=platform))
    assert result.group_id and result.member_id
    return result.group_id, result.member_id


def enqueue(conn: Connection, runtime: Runtime, gid: int, platform: str, n: int = 1,
            prefix: str = "t") -> list[int]:
    actions = [("test", SendText(group_id=gid, text=f"通知{i}")) for i in range(n)]
    return outbox_service.enqueue(conn, platform=platform, actions=actions,
                                  capabilities=runtime.capabilities(platform),
                                  key_prefix=prefix, now=utcnow())


def deliver(runtime: Runtime, worker: str = "w1") -> outbox_service.DeliveryStats:
    return outbox_service.deliver_due(runtime.uow, adapters=runtime.adapters,
                                      limiter=runtime.limiter, worker_id=worker,
                                      policy=runtime.policy, rng=random.Random(1))


def status(conn: Connection, oid: int) -> dict[str, Any]:
    return dict(conn.execute(select(outbox).where(outbox.c.id == oid)).mappings().one())


def test_delivered_once_and_recorded_as_outgoing_message(conn: Connection, runtime: Runtime,
                                                         sandbox: SandboxAdapter) -> None:
    gid, _ = seed_group(conn, runtime)
    [oid] = enqueue(conn, runtime, gid, "sandbox")
    assert deliver(runtime).delivered == 1
    row = status(conn, oid)
    assert row["status"] == "delivered" and row["attempts"] == 1
    assert row["receipt"]["platform_message_id"].startswith("sbx-")
    assert sandbox.store.counts() == (1, 0)
    out = conn.execute(select(messages.c.text).where(messages.c.direction == "out")).scalar_one()
    assert out == "通知0"
    assert deliver(runtime).delivered == 0  # nothing left to do


def test_same_idempotency_key_is_stored_once(conn: Connection, runtime: Runtime) -> None:
    gid, _ = seed_group(conn, runtime)
    assert len(enqueue(conn, runtime, gid, "sandbox", prefix="k")) == 1
    assert enqueue(conn, runtime, gid, "sandbox", prefix="k") == []


def test_transient_failure_retries_with_backoff(conn: Connection, runtime: Runtime) -> None:
    flaky = Flaky(failures=1)
    runtime.adapters["flaky"] = flaky
    gid, _ = seed_group(conn, runtime, "flaky")
    [oid] = enqueue(conn, runtime, gid, "flaky")
    assert deliver(runtime).retried == 1
    row = status(conn, oid)
    assert row["status"] == "pending" and row["attempts"] == 1
    assert "platform busy" in row["last_error"]
    assert row["next_attempt_at"] > utcnow()  # backoff: not due yet
    assert deliver(runtime).delivered == 0
    conn.execute(update(outbox).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    assert deliver(runtime).delivered == 1
    assert status(conn, oid)["status"] == "delivered" and flaky.sent == [row["idempotency_key"]]


def test_dead_after_max_attempts_keeps_reason_and_can_be_retried(conn: Connection,
                                                                 runtime: Runtime) -> None:
    runtime.adapters["flaky"] = Flaky(failures=100)
    runtime.policy = outbox_service.DeliveryPolicy(group_per_minute=6000)  # not the limiter
    gid, _ = seed_group(conn, runtime, "flaky")
    [oid] = enqueue(conn, runtime, gid, "flaky")
    for _ in range(runtime.policy.max_attempts):
        conn.execute(update(outbox).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        deliver(runtime)
    row = status(conn, oid)
    assert row["status"] == "dead" and row["attempts"] == runtime.policy.max_attempts
    assert "platform busy" in row["last_error"]
    outbox_service.do_retry(conn, actor=SYSTEM, outbox_id=oid, now=utcnow())
    assert status(conn, oid)["status"] == "pending"
    try:
        outbox_service.do_retry(conn, actor=SYSTEM, outbox_id=oid, now=utcnow())
    except Conflict as exc:
        assert "only dead rows" in str(exc)
    else:
        raise AssertionError("retrying a pending row must be refused")


def test_permanent_failure_is_dead_at_once(conn: Connection, runtime: Runtime) -> None:
    runtime.adapters["flaky"] = Flaky(failures=1, permanent=True)
    gid, _ = seed_group(conn, runtime, "flaky")
    [oid] = enqueue(conn, runtime, gid, "flaky")
    assert deliver(runtime).dead == 1
    row = status(conn, oid)
    assert row["status"] == "dead" and "group dissolved" in row["last_error"]


def test_missing_capability_becomes_staff_task(conn: Connection, runtime: Runtime,
                                               tmp_path: Path) -> None:
    wecom_like = SandboxAdapter(SandboxStore(str(tmp_path / "w.db")), profile="wecom")
    runtime.adapters["sandbox"] = wecom_like
    gid, mid = seed_group(conn, runtime)
    [oid] = outbox_service.enqueue(
        conn, platform="sandbox", actions=[("moderation", RemoveMember(
            group_id=gid, member_id=mid, reason="广告链接"))],
        capabilities=runtime.capabilities("sandbox"), key_prefix="x", now=utcnow())
    row = status(conn, oid)
    assert row["status"] == "staff_task" and row["last_error"] == "平台不能自动移出成员，请手动完成"
    task = conn.execute(select(staff_tasks).where(staff_tasks.c.id == row["staff_task_id"])
                        ).mappings().one()
    assert task["kind"] == "remove_member" and task["status"] == "open"
    assert task["title"] == "移出群聊：广告链接" and task["payload"]["missing"] == ["remove_member"]
    assert task["group_id"] == gid and task["member_id"] == mid
    assert deliver(runtime).delivered == 0  # never sent by the worker
    assert wecom_like.store.counts() == (0, 0)


def test_expired_lease_resent_on_idempotent_platform(conn: Connection, runtime: Runtime,
                                                     sandbox: SandboxAdapter) -> None:
    gid, _ = seed_group(conn, runtime)
    [oid] = enqueue(conn, runtime, gid, "sandbox")
    claimed = outbox_service.claim_due(runtime.uow, worker_id="dead-worker", now=utcnow(),
                                       policy=runtime.policy)
    assert [c.id for c in claimed] == [oid]
    # the dead worker had already reached the platform before it died
    sandbox.send(Delivery(claimed[0].idempotency_key, SendText(group_id=gid, text="通知0"), "g1"))
    later = utcnow() + timedelta(seconds=runtime.policy.lease_seconds + 1)
    assert outbox_service.recover_expired(runtime.uow, adapters=runtime.adapters, now=later) == 1
    assert deliver(runtime).delivered == 1
    assert sandbox.store.counts() == (1, 1)  # applied once, one duplicate suppressed
    assert status(conn, oid)["status"] == "delivered"


def test_expired_lease_on_non_idempotent_platform_asks_a_person(conn: Connection,
                                                                runtime: Runtime) -> None:
    flaky = Flaky(failures=0)
    runtime.adapters["flaky"] = flaky
    gid, _ = seed_group(conn, runtime, "flaky")
    flaky.capabilities = frozenset(Capability) - {Capability.IDEMPOTENT_SEND}
    [oid] = enqueue(conn, runtime, gid, "flaky")
    outbox_service.claim_due(runtime.uow, worker_id="dead", now=utcnow(), policy=runtime.policy)
    later = utcnow() + timedelta(seconds=runtime.policy.lease_seconds + 1)
    outbox_service.recover_expired(runtime.uow, adapters=runtime.adapters, now=later)
    row = status(conn, oid)
    assert row["status"] == "uncertain" and row["staff_task_id"] is not None
    assert deliver(runtime).delivered == 0 and flaky.sent == []  # at most once


def test_rate_limited_rows_are_deferred_without_spending_attempts(conn: Connection,
                                                                  runtime: Runtime) -> None:
    gid, _ = seed_group(conn, runtime)
    runtime.policy = outbox_service.DeliveryPolicy(group_per_minute=2.0)  # burst 1
    runtime.limiter = LocalRateLimiter()
    ids = enqueue(conn, runtime, gid, "sandbox", n=3)
    stats = deliver(runtime)
    assert stats.delivered == 1 and stats.deferred == 2
    deferred = [status(conn, i) for i in ids[1:]]
    assert all(r["status"] == "pending" and r["attempts"] == 0 for r in deferred)
    assert all(r["next_attempt_at"] > utcnow() for r in deferred)


def test_two_workers_never_claim_the_same_row(conn: Connection, runtime: Runtime) -> None:
    gid, _ = seed_group(conn, runtime)
    enqueue(conn, runtime, gid, "sandbox", n=10)
    runtime.policy = outbox_service.DeliveryPolicy(batch_size=4)
    a = outbox_service.claim_due(runtime.uow, worker_id="a", now=utcnow(), policy=runtime.policy)
    b = outbox_service.claim_due(runtime.uow, worker_id="b", now=utcnow(), policy=runtime.policy)
    assert len(a) == 4 and len(b) == 4
    assert not {c.id for c in a} & {c.id for c in b}


def test_bulk_fan_out_is_written_and_settled_only_through_the_outbox(
        conn: Connection, runtime: Runtime) -> None:
    """enqueue_many (what broadcasts and playbook steps use) stores each key once, sends a
    platform cannot make wait on the caller's staff task, and the task settles them."""
    from qunyun.domain.outbox import OutboxStatus
    from qunyun.services import tasks as tasks_service

    gid, _ = seed_group(conn, runtime)
    now = utcnow()
    asked: list[tuple[str, list[str]]] = []

    def task(send: outbox_service.BulkSend, missing: list[str]) -> int:
        asked.append((send.key, missing))
        return tasks_service.create_task(conn, kind="confirm", title="确认群发",
                                         platform=send.platform, reason="需要群主确认",
                                         now=now)

    sends = [outbox_service.BulkSend(key=f"bulk:{i}", platform="sandbox",
                                     action=SendText(group_id=gid, text=f"第{i}条"),
                                     rule="delivery:1", due=now) for i in range(3)]
    ids = outbox_service.enqueue_many(conn, sends + sends[:1], capabilities=lambda p: frozenset(
        Capability), staff_task=task, now=now)
    assert len(ids) == 3 and asked == []
    again = outbox_service.enqueue_many(conn, sends, capabilities=lambda p: frozenset(
        Capability), staff_task=task, now=now)
    assert again == ids  # a replay adds nothing
    waiting = [outbox_service.BulkSend(key="bulk:w", platform="sandbox",
                                       action=SendText(group_id=gid, text="要人确认"),
                                       rule="delivery:2", due=now)]
    [wid] = outbox_service.enqueue_many(conn, waiting, capabilities=lambda p: frozenset(),
                                        staff_task=task, now=now)
    row = status(conn, wid)
    assert row["status"] == OutboxStatus.STAFF_TASK and asked == [("bulk:w", ["send_text"])]
    tasks_service.do_complete_task(conn, actor=SYSTEM, task_id=row["staff_task_id"],
                                   outcome="群主已发", now=now)
    row = status(conn, wid)
    assert row["status"] == OutboxStatus.DELIVERED and row["receipt"]["by_person"]
