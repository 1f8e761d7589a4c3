"""The states of an outbox row (one stored action on its way to a platform).

``services/outbox.py`` is the only module that creates outbox rows or changes their status;
everything else names a status through this enum."""

from __future__ import annotations

from enum import StrEnum


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for a worker (or for its batch window)
    SENDING = "sending"  # claimed by a worker under a lease
    DELIVERED = "delivered"
    DEAD = "dead"  # gave up: attempts used, or the platform refused for good
    STAFF_TASK = "staff_task"  # waiting for a person (the platform cannot do it by API)
    UNCERTAIN = "uncertain"  # a worker died mid-send on a platform that cannot dedupe
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # a reply whose moment passed before it could be sent


FINISHED = frozenset({OutboxStatus.DELIVERED, OutboxStatus.DEAD, OutboxStatus.CANCELLED,
                      OutboxStatus.EXPIRED})
