"""Chat messages: the one writer of ``messages`` and of each member's message total.

Three paths store messages — a live event (one at a time, through ingest), a chat export
(batches of thousands, through imports) and the outbox (what the team sent, once
delivered) — and "a member's message and their total change together" holds on each: one
at a time the total is bumped with the row; in batches the totals are added once at the
end (from every batch whose rows all went in; members of a batch with duplicates are
recounted from the table, which then holds the truth).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, update

from qunyun.adapters.storage.sql import bulk_insert_ignore, insert_ignore, insert_ignore_many
from qunyun.adapters.storage.tables import messages
from qunyun.services import counts

# a batch row, in this order
COLUMNS = ("group_id", "member_id", "platform_message_id", "sent_at", "direction",
           "message_type", "text", "recalled")
KEY = ("group_id", "platform_message_id")


def record(conn: Connection, *, group_id: int, member_id: int | None, message_id: str,
           at: datetime, message_type: str, text: str,
           totals: Counter[int] | None = None) -> bool:
    """One member message (a live event); False when it was stored before (a replay).
    ``totals``: collects the members' new messages for ``add_totals`` to add once for a
    batch of events (in the same transaction) instead of once per message."""
    stored = insert_ignore(conn, messages, {
        "group_id": group_id, "member_id": member_id, "platform_message_id": message_id,
        "sent_at": at, "direction": "in", "message_type": message_type, "text": text,
        "recalled": False}, KEY)
    if stored is not None and member_id is not None:
        if totals is None:
            counts.bump(conn, member_id, counts.MESSAGE)
        else:
            totals[member_id] += 1
    return stored is not None


def add_totals(conn: Connection, totals: Mapping[int, int]) -> None:
    """What ``record`` collected: each member's total grows by their new messages."""
    counts.add(conn, counts.MESSAGE, totals)


def edit(conn: Connection, *, group_id: int, message_id: str, text: str) -> bool:
    """A member's edit of a stored message: the text is replaced (the one writer of a
    message's text after it is stored); False when the message was never stored."""
    changed = conn.execute(update(messages).where(
        messages.c.group_id == group_id, messages.c.platform_message_id == message_id)
        .values(text=text))
    return bool(changed.rowcount)


def record_sent(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """What the team sent, once delivered (``direction=out``, no member): how many were new."""
    return insert_ignore_many(conn, messages, [
        {**row, "member_id": None, "direction": "out", "recalled": False} for row in rows],
        KEY)


@dataclass
class Batches:
    """A chat export's messages, stored in batches; ``finish`` brings the totals in step."""

    conn: Connection
    said: Counter[int] = field(default_factory=Counter)
    recount: set[int] = field(default_factory=set)

    def add(self, rows: Sequence[Sequence[Any]], *, ready: bool = False) -> int:
        """Store rows (``COLUMNS`` order; ``ready``: times already the store's text);
        returns how many were new."""
        added = bulk_insert_ignore(self.conn, messages, COLUMNS, rows, KEY, ready=ready)
        speakers = (row[1] for row in rows if row[1] is not None)
        if added == len(rows):
            self.said.update(speakers)
        else:
            self.recount.update(speakers)
        return added

    def finish(self) -> None:
        counts.add(self.conn, counts.MESSAGE, self.said)
        counts.recount(self.conn, self.recount)
        self.said.clear()
        self.recount.clear()
