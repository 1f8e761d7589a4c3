"""The raw inbox: the one writer of ``raw_inbox`` — what a platform pushed to us (a WeCom
callback, decrypted; a Telegram webhook update) stored before we answer and processed after
by the worker.

The endpoint only verifies and inserts; the digest of the body makes a platform's retries
one row. The worker claims the oldest pending rows of a platform (other workers skip them
on PostgreSQL; SQLite's write lock serialises), turns them into domain events through the
platform's adapter, and marks each processed or failed with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from qunyun.adapters.platforms.base import body_digest
from qunyun.adapters.storage.sql import insert_ignore, supports_skip_locked
from qunyun.adapters.storage.tables import raw_inbox
from qunyun.clock import utcnow

PENDING, PROCESSED, FAILED = "pending", "processed", "failed"
STATUSES = (PENDING, PROCESSED, FAILED)


def store(conn: Connection, *, platform: str, account: str, body: str,
          now: datetime) -> int | None:
    """One pushed item, in the caller's transaction (the web intake commits a batch of them
    at once); None when it was stored before (a retry)."""
    new_id = insert_ignore(conn, raw_inbox, {
        "platform": platform, "account": account, "digest": body_digest(body), "body": body,
        "received_at": now, "status": PENDING, "attempts": 0, "error": ""},
        ["platform", "account", "digest"])
    return int(new_id) if new_id is not None else None


def claim(conn: Connection, platform: str, limit: int) -> list[dict[str, Any]]:
    """The oldest pending items of a platform, locked for this transaction: (id, account,
    digest, body). ``processing`` rows were left by versions that claimed in a transaction
    of its own and crashed before finishing."""
    stmt = (select(raw_inbox.c.id, raw_inbox.c.account, raw_inbox.c.digest, raw_inbox.c.body)
            .where(raw_inbox.c.platform == platform,
                   raw_inbox.c.status.in_((PENDING, "processing")))
            .order_by(raw_inbox.c.id).limit(limit))
    if supports_skip_locked(conn):
        stmt = stmt.with_for_update(skip_locked=True)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def finish(conn: Connection, item_id: int, status: str, error: str = "") -> None:
    conn.execute(update(raw_inbox).where(raw_inbox.c.id == item_id)
                 .values(status=status, error=error[:2000], processed_at=utcnow(),
                         attempts=raw_inbox.c.attempts + 1))


def finish_many(conn: Connection, item_ids: list[int], status: str) -> None:
    """Mark a batch's items in one statement (processing a batch of updates marked each
    with its own UPDATE: 8 % of the time spent)."""
    if item_ids:
        conn.execute(update(raw_inbox).where(raw_inbox.c.id.in_(item_ids))
                     .values(status=status, error="", processed_at=utcnow(),
                             attempts=raw_inbox.c.attempts + 1))


def pending_by_account(conn: Connection, platform: str) -> Mapping[str, int]:
    return {str(a): int(n) for a, n in conn.execute(
        select(raw_inbox.c.account, func.count())
        .where(raw_inbox.c.platform == platform, raw_inbox.c.status == PENDING)
        .group_by(raw_inbox.c.account)).all()}


def recent(conn: Connection, platform: str, *, account: str | None = None,
           status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The newest items of a platform: id, account, status, received_at, processed_at,
    error and body."""
    stmt = select(raw_inbox.c.id, raw_inbox.c.account, raw_inbox.c.status,
                  raw_inbox.c.received_at, raw_inbox.c.processed_at, raw_inbox.c.error,
                  raw_inbox.c.body).where(raw_inbox.c.platform == platform)
    if account:
        stmt = stmt.where(raw_inbox.c.account == account)
    if status:
        stmt = stmt.where(raw_inbox.c.status == status)
    return [dict(r) for r in
            conn.execute(stmt.order_by(raw_inbox.c.id.desc()).limit(limit)).mappings()]
