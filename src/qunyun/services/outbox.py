"""The durable outbox (F19): actions stored before they are sent, then delivered by workers.

Life of a row: ``pending`` → claimed as ``sending`` (with a lease) → ``delivered``; a transient
error puts it back to ``pending`` with backoff until ``max_attempts``, then ``dead``; a
permanent error makes it ``dead`` at once. An action the platform cannot perform is stored as
``staff_task`` with a task for a person. A worker that dies mid-send leaves ``sending`` with an
expired lease: platforms that dedupe idempotency keys get it resent; for the others we cannot
know whether it went out, so it becomes ``uncertain`` with a task to check (at most once).
A reply that waited past its event's freshness window (an outage, a backlog) becomes
``expired`` instead of being sent: nobody wants an answer to last week's message.

One module on purpose: it is the one writer of outbox rows and their statuses, from
enqueueing through claiming, delivery, retries and recovery.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, select, update

from qunyun.adapters.platforms.base import (
    Delivery,
    NeedsPersonError,
    PermanentSendError,
    PlatformAdapter,
    Receipt,
    SendError,
    SendRate,
    TransientSendError,
)
from qunyun.adapters.ratelimit import RateLimiter
from qunyun.adapters.storage.sql import (
    bulk_insert_ignore,
    insert_ignore,
    supports_skip_locked,
)
from qunyun.adapters.storage.tables import (
    groups,
    identities,
    members,
    outbox,
)
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.clock import utcnow
from qunyun.domain.actions import (
    Action,
    Capability,
    SendText,
    action_from_payload,
    describe_missing,
)
from qunyun.domain.automation import FreshnessSettings
from qunyun.domain.outbox import OutboxStatus
from qunyun.domain.staff import Permission
from qunyun.engine.freshness import expires_at
from qunyun.i18n import Term
from qunyun.services import audit, tasks
from qunyun.services import messages as chat_messages
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.listing import Columns, Listing, Page, fetch
from qunyun.services.users import Actor

log = logging.getLogger(__name__)

PENDING = OutboxStatus.PENDING
SENDING = OutboxStatus.SENDING
DELIVERED = OutboxStatus.DELIVERED
DEAD = OutboxStatus.DEAD
STAFF_TASK = OutboxStatus.STAFF_TASK
UNCERTAIN = OutboxStatus.UNCERTAIN
CANCELLED = OutboxStatus.CANCELLED
EXPIRED = OutboxStatus.EXPIRED
STATUSES = tuple(OutboxStatus)
# what the bulk path writes (COPY on PostgreSQL, the C executemany on SQLite)
BULK_COLUMNS = ("idempotency_key", "platform", "group_id", "member_id", "action_type",
                "payload", "rule", "status", "attempts", "next_attempt_at", "last_error",
                "created_at", "staff_task_id")


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    max_attempts: int = 6
    backoff_base_seconds: float = 2.0
    backoff_cap_seconds: float = 600.0
    lease_seconds: float = 60.0
    batch_size: int = 50
    platform_per_second: float = 50.0
    group_per_minute: float = 20.0

    def backoff(self, attempts: int, rng: random.Random) -> float:
        """Exponential backoff with full jitter in its upper half (avoid retry storms)."""
        ceiling = min(self.backoff_cap_seconds,
                      self.backoff_base_seconds * 2.0 ** (attempts - 1))
        return float(ceiling / 2 + rng.random() * ceiling / 2)


def enqueue(
    conn: Connection, *, platform: str, actions: Sequence[tuple[str, Action]],
    capabilities: frozenset[Capability], key_prefix: str, now: datetime,
    inbound_event_id: int | None = None, due_at: datetime | None = None,
    event_at: datetime | None = None, freshness: FreshnessSettings | None = None,
) -> list[int]:
    """Store actions in the caller's transaction; the same key twice is stored once. With
    ``event_at`` and ``freshness``, a reply carries the time after which it is not sent."""
    ids: list[int] = []
    for index, (rule, action) in enumerate(actions):
        key = action.own_key() or f"{key_prefix}:{rule}:{index}"
        missing = action.required_capabilities() - capabilities
        if missing and action.optional:
            continue
        if missing and (substitute := action.instead()) is not None:
            ids += enqueue(conn, platform=platform, actions=[(rule, a) for a in substitute],
                           capabilities=capabilities, key_prefix=f"{key}:instead", now=now,
                           inbound_event_id=inbound_event_id, due_at=due_at,
                           event_at=event_at, freshness=freshness)
            continue
        member_id = getattr(action, "member_id", None)
        batched = isinstance(action, SendText) and bool(action.batch_key) and not missing
        if batched:
            assert isinstance(action, SendText)
            merged_into = _merge_into_waiting(conn, platform=platform, action=action, now=now)
            if merged_into is not None:
                ids.append(merged_into)
                continue
        row: dict[str, Any] = {
            "idempotency_key": key, "platform": platform, "group_id": action.group_id,
            "member_id": member_id, "action_type": action.type_name,
            "payload": action.to_payload(), "rule": rule, "status": PENDING, "attempts": 0,
            "next_attempt_at": due_at or now, "last_error": "",
            "inbound_event_id": inbound_event_id, "created_at": now,
            "expires_at": (expires_at(action, event_at, freshness)
                           if event_at is not None and freshness is not None else None),
        }
        if batched:
            assert isinstance(action, SendText)
            row["batch_key"] = action.batch_key
            row["next_attempt_at"] = (due_at or now) + timedelta(seconds=action.batch_seconds)
        if missing or action.needs_person:
            row["status"] = STAFF_TASK
            row["last_error"] = (describe_missing(missing) if missing
                                 else "需要人工处理")
        new_id = insert_ignore(conn, outbox, row, ["idempotency_key"])
        if new_id is None:
            continue
        ids.append(int(new_id))
        if missing or action.needs_person:
            task_id = tasks.create_task(
                conn, kind=action.type_name, title=action.summary(), platform=platform,
                reason=row["last_error"], group_id=action.group_id, member_id=member_id,
                payload={"outbox_id": new_id, "action": row["payload"],
                         "missing": sorted(missing)}, now=now)
            conn.execute(update(outbox).where(outbox.c.id == new_id)
                         .values(staff_task_id=task_id))
    return ids


@dataclass(frozen=True, slots=True)
class BulkSend:
    """One action of a fan-out (a broadcast or playbook step to thousands of recipients)."""

    key: str
    platform: str
    action: Action
    rule: str
    due: datetime


def enqueue_many(conn: Connection, sends: Sequence[BulkSend], *,
                 capabilities: Callable[[str], frozenset[Capability]],
                 staff_task: Callable[[BulkSend, list[str]], int], now: datetime,
                 ids: bool = True) -> list[int]:
    """Store a fan-out in one bulk write; the same key twice is stored once. A send its
    platform cannot make by API waits for a person: ``staff_task(send, missing)`` gives the
    task it waits on (one per platform and occurrence, or one per row — the caller's
    policy). Returns the ids of the rows of these keys, ascending (``ids=False``: nothing,
    and one query less)."""
    rows = []
    for send in sends:
        missing = send.action.required_capabilities() - capabilities(send.platform)
        task_id = staff_task(send, sorted(missing)) if missing else None
        rows.append([
            send.key, send.platform, send.action.group_id,
            getattr(send.action, "member_id", None), send.action.type_name,
            json.dumps(send.action.to_payload(), ensure_ascii=False), send.rule,
            STAFF_TASK if missing else PENDING, 0, max(send.due, now),
            describe_missing(missing) if missing else "", now, task_id])
    if not rows:
        return []
    bulk_insert_ignore(conn, outbox, BULK_COLUMNS, rows, ["idempotency_key"])
    if not ids:
        return []
    keys = sorted({send.key for send in sends})
    found: list[int] = []
    for start in range(0, len(keys), 1000):
        found.extend(int(i) for i in conn.execute(select(outbox.c.id).where(
            outbox.c.idempotency_key.in_(keys[start:start + 1000]))).scalars())
    return sorted(found)


def settle_for_task(conn: Connection, *, task_id: int, done: bool, receipt: dict[str, Any],
                    now: datetime) -> int:
    """The rows waiting on a staff task settle with it: delivered by a person, or cancelled
    when the task is dismissed. Returns how many."""
    result = conn.execute(update(outbox).where(
        outbox.c.staff_task_id == task_id, outbox.c.status == STAFF_TASK).values(
        status=DELIVERED if done else CANCELLED, delivered_at=now if done else None,
        receipt=receipt))
    return int(result.rowcount or 0)


def settle_confirmed(conn: Connection, *, outbox_id: int, sent: bool, reason: str,
                     ticket: str, now: datetime) -> None:
    """A person-confirmed send the platform reported on: delivered, or dead with its reason."""
    values: dict[str, Any] = ({"status": DELIVERED, "delivered_at": now,
                               "receipt": {"ticket": ticket, "confirmed": True}} if sent else
                              {"status": DEAD, "last_error": f"platform: {reason}",
                               "receipt": {"ticket": ticket, "confirmed": False}})
    conn.execute(update(outbox).where(outbox.c.id == outbox_id, outbox.c.status == STAFF_TASK)
                 .values(**values))


def _merge_into_waiting(conn: Connection, *, platform: str, action: SendText,
                        now: datetime) -> int | None:
    """Fold a batched send into the one waiting in its group, if any; returns its id.

    Only a row still ``pending`` and not yet due is changed (the UPDATE re-checks the status,
    so a worker that claimed it meanwhile makes this start a new batch instead).
    """
    stmt = (select(outbox.c.id, outbox.c.payload).where(
        outbox.c.platform == platform, outbox.c.group_id == action.group_id,
        outbox.c.batch_key == action.batch_key, outbox.c.status == PENDING,
        outbox.c.next_attempt_at > now).order_by(outbox.c.id.desc()).limit(1))
    if supports_skip_locked(conn):
        stmt = stmt.with_for_update()
    waiting = conn.execute(stmt).first()
    if waiting is None:
        return None
    current = action_from_payload(SendText.type_name, dict(waiting.payload))
    assert isinstance(current, SendText)
    merged = current.merged(action)
    changed = conn.execute(update(outbox).where(
        outbox.c.id == waiting.id, outbox.c.status == PENDING).values(
        payload=merged.to_payload())).rowcount
    return int(waiting.id) if changed else None


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    idempotency_key: str
    platform: str
    group_id: int | None
    action_type: str
    payload: dict[str, Any]
    attempts: int


def claim_due(uow: UnitOfWork, *, worker_id: str, now: datetime,
              policy: DeliveryPolicy) -> list[Claimed]:
    """Atomically move a batch of due rows to ``sending`` under this worker's lease.

    Two statements in one transaction: lock the ids (SKIP LOCKED on PostgreSQL; the SQLite
    write lock was taken at BEGIN), then update exactly those. A single UPDATE … IN (SELECT …
    LIMIT n SKIP LOCKED) is not safe on PostgreSQL: the planner may re-run the subquery.
    """
    with uow.write() as conn:
        # replies that waited past their event's window are dropped, not sent late
        conn.execute(update(outbox).where(
            outbox.c.status == PENDING, outbox.c.next_attempt_at <= now,
            outbox.c.expires_at < now).values(
            status=EXPIRED, last_error="过了回复时限，未发送（消息太旧）"))
        due = (select(outbox.c.id)
               .where(outbox.c.status == PENDING, outbox.c.next_attempt_at <= now)
               .order_by(outbox.c.next_attempt_at, outbox.c.id).limit(policy.batch_size))
        if supports_skip_locked(conn):
            due = due.with_for_update(skip_locked=True)
        ids = list(conn.execute(due).scalars())
        if not ids:
            return []
        rows = conn.execute(
            update(outbox).where(outbox.c.id.in_(ids), outbox.c.status == PENDING)
            .values(status=SENDING, claimed_by=worker_id,
                    lease_until=now + timedelta(seconds=policy.lease_seconds),
                    attempts=outbox.c.attempts + 1)
            .returning(outbox.c.id, outbox.c.idempotency_key, outbox.c.platform,
                       outbox.c.group_id, outbox.c.action_type, outbox.c.payload,
                       outbox.c.attempts)
        ).all()
    return sorted((Claimed(*r) for r in rows), key=lambda c: c.id)


def recover_expired(uow: UnitOfWork, *, adapters: Mapping[str, PlatformAdapter],
                    now: datetime) -> int:
    """Handle rows whose worker died mid-send (lease expired): resend or ask a person."""
    with uow.write() as conn:
        rows = conn.execute(select(outbox).where(
            outbox.c.status == SENDING, outbox.c.lease_until < now)).mappings().all()
        for row in rows:
            adapter = adapters.get(row["platform"])
            if adapter is not None and adapter.can(Capability.IDEMPOTENT_SEND):
                conn.execute(update(outbox).where(outbox.c.id == row["id"],
                                                  outbox.c.status == SENDING)
                             .values(status=PENDING, lease_until=None, claimed_by=None,
                                     last_error="lease expired; resent with the same key"))
                continue
            reason = "worker stopped while sending; the platform cannot tell whether it arrived"
            task_id = tasks.create_task(
                conn, kind="check_delivery", title=f"核对是否已发送: {row['action_type']}",
                reason=reason, platform=row["platform"], group_id=row["group_id"],
                member_id=row["member_id"], payload={"outbox_id": row["id"]}, now=now)
            conn.execute(update(outbox).where(outbox.c.id == row["id"])
                         .values(status=UNCERTAIN, last_error=reason, staff_task_id=task_id,
                                 lease_until=None))
    return len(rows)


def _resolve_batch(conn: Connection, batch: Sequence[Claimed]) -> dict[int, Delivery | SendError]:
    """Platform ids for a whole batch in two queries; a row that cannot be resolved gets the
    permanent error that will make it dead."""
    actions: dict[int, Action | SendError] = {}
    for c in batch:
        try:
            actions[c.id] = action_from_payload(c.action_type, c.payload)
        except ValueError as exc:  # a stored payload we cannot rebuild: never retry it
            actions[c.id] = PermanentSendError(str(exc))
    group_ids = {c.group_id for c in batch if c.group_id is not None}
    chats = dict(conn.execute(select(groups.c.id, groups.c.external_id)
                              .where(groups.c.id.in_(group_ids))).all()) if group_ids else {}
    wanted: set[int] = set()
    for a in actions.values():
        if isinstance(a, Action):
            wanted.update(getattr(a, "mention_member_ids", ()))
            if getattr(a, "member_id", None) is not None:
                wanted.add(a.member_id)  # type: ignore[attr-defined]
    names: dict[int, str] = {}
    ext: dict[tuple[int, str], str] = {}
    if wanted:
        platforms = {c.platform for c in batch}
        for row in conn.execute(
            select(members.c.id, members.c.display_name, identities.c.platform,
                   identities.c.external_id)
            .outerjoin(identities, and_(identities.c.member_id == members.c.id,
                                        identities.c.platform.in_(platforms)))
            .where(members.c.id.in_(wanted))
        ):
            names[row.id] = row.display_name
            if row.external_id is not None:
                ext[(row.id, row.platform)] = row.external_id
    out: dict[int, Delivery | SendError] = {}
    for c in batch:
        action = actions[c.id]
        if isinstance(action, SendError):
            out[c.id] = action
            continue
        chat = chats.get(c.group_id) if c.group_id is not None else None
        if c.group_id is not None and chat is None:
            out[c.id] = PermanentSendError(f"group {c.group_id} no longer exists")
            continue
        ids = list(getattr(action, "mention_member_ids", ()))
        member_id = getattr(action, "member_id", None)
        if member_id is not None:
            ids.append(member_id)
            if (member_id, c.platform) not in ext:
                out[c.id] = PermanentSendError(f"member {member_id} has no {c.platform} identity")
                continue
        out[c.id] = Delivery(
            c.idempotency_key, action, chat,
            {i: ext[(i, c.platform)] for i in ids if (i, c.platform) in ext},
            {i: names.get(i, "") for i in ids})
    return out


def _record_delivered(conn: Connection, worker_id: str,
                      done: Sequence[tuple[Claimed, Action, Receipt]]) -> None:
    """Mark a batch delivered in three statements (an executemany update, a check of which
    rows this worker still owned, one insert of the outgoing messages)."""
    if not done:
        return
    now = utcnow()
    conn.execute(
        update(outbox).where(outbox.c.id == bindparam("b_id"), outbox.c.status == SENDING,
                             outbox.c.claimed_by == worker_id)
        .values(status=DELIVERED, delivered_at=now, lease_until=None, last_error="",
                receipt=bindparam("b_receipt")),
        [{"b_id": c.id, "b_receipt": {"platform_message_id": r.platform_message_id,
                                      "duplicate": r.duplicate, **dict(r.detail)}}
         for c, _a, r in done])
    ours = set(conn.execute(select(outbox.c.id).where(
        outbox.c.id.in_([c.id for c, _a, _r in done]), outbox.c.status == DELIVERED,
        outbox.c.claimed_by == worker_id)).scalars())
    chat_messages.record_sent(conn, [
        {"group_id": c.group_id, "platform_message_id": r.platform_message_id or c.idempotency_key,
         "sent_at": now, "message_type": "text", "text": a.text}
        for c, a, r in done
        if c.id in ours and isinstance(a, SendText) and c.group_id is not None])


def _record_error(conn: Connection, claimed: Claimed, worker_id: str, error: SendError,
                  policy: DeliveryPolicy, rng: random.Random) -> None:
    """Store a failed attempt: back to pending with backoff, or dead with the reason."""
    values: dict[str, Any] = {"lease_until": None, "claimed_by": None,
                              "last_error": f"{type(error).__name__}: {error}"[:2000]}
    dead = isinstance(error, PermanentSendError) or claimed.attempts >= policy.max_attempts
    if isinstance(error, NeedsPersonError):
        try:
            title = action_from_payload(claimed.action_type, claimed.payload).summary()
        except ValueError:
            title = claimed.action_type
        member = claimed.payload.get("member_id")
        values["status"] = STAFF_TASK
        values["last_error"] = str(error)[:2000]
        values["staff_task_id"] = tasks.create_task(
            conn, kind=claimed.action_type, title=title, reason=str(error),
            platform=claimed.platform, group_id=claimed.group_id,
            member_id=member if isinstance(member, int) else None,
            payload={"outbox_id": claimed.id, "action": claimed.payload,
                     **({"says": {"reason": error.says}} if error.says else {})},
            now=utcnow())
    elif dead:
        values["status"] = DEAD
    else:
        delay = policy.backoff(claimed.attempts, rng)
        if isinstance(error, TransientSendError) and error.retry_after:
            delay = max(delay, error.retry_after)
        values["status"] = PENDING
        values["next_attempt_at"] = utcnow() + timedelta(seconds=delay)
    conn.execute(update(outbox).where(outbox.c.id == claimed.id,
                                      outbox.c.claimed_by == worker_id).values(**values))


def _record_deferred(conn: Connection, claimed: Claimed, worker_id: str, wait: float) -> None:
    """Put a rate-limited row back without counting the attempt."""
    conn.execute(update(outbox).where(outbox.c.id == claimed.id,
                                      outbox.c.claimed_by == worker_id).values(
        status=PENDING, lease_until=None, claimed_by=None, attempts=outbox.c.attempts - 1,
        next_attempt_at=utcnow() + timedelta(seconds=wait)))


@dataclass
class DeliveryStats:
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0


def _rate_wait(limiter: RateLimiter, claimed: Claimed, policy: DeliveryPolicy,
               platform_rate: SendRate | None = None) -> float:
    """Seconds to wait before this send: the team's limits, tightened to the platform's own
    where it declares them."""
    per_second, per_minute = policy.platform_per_second, policy.group_per_minute
    if platform_rate is not None:
        per_second = min(per_second, platform_rate.per_second)
        per_minute = min(per_minute, platform_rate.per_group_per_minute)
    wait = limiter.acquire(f"platform:{claimed.platform}", per_second, max(1.0, per_second))
    if not wait and claimed.group_id is not None:
        wait = limiter.acquire(f"group:{claimed.group_id}", per_minute / 60.0,
                               max(1.0, per_minute / 4))
    return wait


def deliver_due(
    uow: UnitOfWork, *, adapters: Mapping[str, PlatformAdapter], limiter: RateLimiter,
    worker_id: str, policy: DeliveryPolicy, rng: random.Random | None = None,
    now: Callable[[], datetime] = utcnow,
) -> DeliveryStats:
    """Claim one batch and deliver it.

    On platforms that apply an idempotency key once, the batch's outcomes are recorded in one
    transaction at the end (a crash in between only causes resends the platform ignores).
    Elsewhere each outcome is recorded before the next send, so at most one row per worker
    can be left uncertain by a crash.
    """
    rng = rng or random.Random()
    stats = DeliveryStats()
    batch = claim_due(uow, worker_id=worker_id, now=now(), policy=policy)
    if not batch:
        return stats
    with uow.read() as conn:
        targets = _resolve_batch(conn, batch)
    pending: list[Callable[[Connection], None]] = []
    done: list[tuple[Claimed, Action, Receipt]] = []

    def flush() -> None:
        if pending or done:
            with uow.write() as conn:
                _record_delivered(conn, worker_id, done)
                for record in pending:
                    record(conn)
            pending.clear()
            done.clear()

    for claimed in batch:
        adapter = adapters.get(claimed.platform)
        target = targets[claimed.id]
        error: SendError | None = target if isinstance(target, SendError) else None
        if adapter is None:
            error = PermanentSendError(f"no adapter configured for {claimed.platform!r}")
        if error is None and isinstance(target, Delivery):
            wait = _rate_wait(limiter, claimed, policy,
                              adapter.send_rate if adapter is not None else None)
            if wait:
                pending.append(partial(_record_deferred, claimed=claimed, worker_id=worker_id,
                                       wait=wait))
                stats.deferred += 1
                continue
            try:
                assert adapter is not None
                receipt = adapter.send(target)
            except SendError as exc:
                error = exc
            else:
                done.append((claimed, target.action, receipt))
                stats.delivered += 1
        if error is not None:
            will_die = (isinstance(error, PermanentSendError)
                        or claimed.attempts >= policy.max_attempts)
            pending.append(partial(_record_error, claimed=claimed, worker_id=worker_id,
                                   error=error, policy=policy, rng=rng))
            if will_die:
                stats.dead += 1
            else:
                stats.retried += 1
        if adapter is None or not adapter.can(Capability.IDEMPOTENT_SEND):
            flush()
    flush()
    return stats


def outbox_counts(conn: Connection) -> dict[str, int]:
    counts: dict[str, int] = {s.value: 0 for s in OutboxStatus}
    for status, n in conn.execute(select(outbox.c.status, func.count())
                                  .group_by(outbox.c.status)):
        counts[status] = int(n)
    return counts


OUTBOX_COLUMNS = Columns(
    sortable={"id": (outbox.c.id, "desc"), "group": (groups.c.name, "asc"),
              "status": (outbox.c.status, "asc"), "attempts": (outbox.c.attempts, "desc"),
              "next_attempt": (outbox.c.next_attempt_at, "asc")},
    searched=(groups.c.name, outbox.c.rule, outbox.c.last_error), tiebreak=outbox.c.id.desc())


def page_outbox(conn: Connection, *, actor: Actor, status: str | None = None,
                listing: Listing = Listing()) -> Page:
    """Delivery rows of one status (or all), searched by group, rule or error."""
    actor.require(Permission.VIEW)
    if status and status not in STATUSES:
        raise InvalidInput("status: one of {statuses}", statuses=", ".join(STATUSES))
    stmt = (select(outbox, groups.c.name.label("group_name"))
            .outerjoin(groups, groups.c.id == outbox.c.group_id))
    if status:
        stmt = stmt.where(outbox.c.status == status)
    return fetch(conn, stmt, listing, OUTBOX_COLUMNS)


def list_outbox(conn: Connection, *, actor: Actor, status: str | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
    """The latest ``limit`` rows (the newest first)."""
    return page_outbox(conn, actor=actor, status=status,
                       listing=Listing(per_page=limit)).rows


def do_retry(conn: Connection, *, actor: Actor, outbox_id: int, now: datetime) -> None:
    """Give a dead row another round of attempts (after the operator fixed the cause)."""
    actor.require(Permission.OPERATE)
    row = conn.execute(select(outbox.c.status).where(outbox.c.id == outbox_id)).first()
    if row is None:
        raise NotFound("outbox row {outbox_id} not found", outbox_id=outbox_id)
    if row.status != DEAD:
        raise Conflict("outbox row {outbox_id} is {status}, only dead rows can be retried",
                       outbox_id=outbox_id, status=Term("status", row.status))
    conn.execute(update(outbox).where(outbox.c.id == outbox_id).values(
        status=PENDING, attempts=0, next_attempt_at=now, last_error=""))
    audit.record(conn, actor=actor.label, action="outbox.retry", object_type="outbox",
                 object_id=outbox_id)


def do_cancel(conn: Connection, *, outbox_id: int, reason: str) -> bool:
    """Call off a row not yet sent (pending, or waiting on a person); False when it had
    already gone out or ended. Part of a larger change (an overturned decision), which
    records its own audit row."""
    return bool(conn.execute(update(outbox).where(
        outbox.c.id == outbox_id, outbox.c.status.in_((PENDING, STAFF_TASK))).values(
        status=CANCELLED, last_error=reason[:2000])).rowcount)


def repoint_group(conn: Connection, *, old: int, new: int) -> None:
    """A planned group linked to a chat the bot saw first: what waits in the outbox for
    the plan (a task's row, a merge's invitation) goes to the chat's group."""
    conn.execute(update(outbox).where(outbox.c.group_id == old).values(group_id=new))

