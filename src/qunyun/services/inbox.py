"""One inbox: what needs a person today, from every feature that asks for one — open staff
tasks, follow-ups due by the end of today (the team's day), moderation decisions waiting
for review, health alerts whose task is still open, and sends that failed. Read-only: each
entry says how many and where it is handled; the items themselves stay with their feature."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection

from qunyun.clock import Clock
from qunyun.domain.staff import Permission
from qunyun.services import health, moderation, outbox, records, tasks
from qunyun.services.automation import PENDING
from qunyun.services.users import Actor

SHOWN = 5  # items listed per kind; the count says how many there are


@dataclass
class InboxEntry:
    kind: str  # tasks, follow_ups, reviews, alerts, failed_sends
    count: int
    link: str
    items: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Inbox:
    entries: list[InboxEntry]

    @property
    def total(self) -> int:
        return sum(e.count for e in self.entries)

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "entries": [asdict(e) for e in self.entries]}


def get_inbox(conn: Connection, *, actor: Actor, clock: Clock) -> Inbox:
    actor.require(Permission.VIEW)
    today_ends = clock.day_start(clock.now.astimezone(clock.tz).date() + timedelta(days=1))
    # a health alert is also a staff task: it is counted once, under alerts
    alert_kinds = (health.TASK_KIND,)
    open_tasks = tasks.list_tasks(conn, actor=actor, limit=SHOWN, except_kinds=alert_kinds)
    due = records.list_follow_ups(conn, actor=actor, due_before=today_ends, limit=SHOWN)
    reviews = moderation.list_decisions(conn, actor=actor, status=PENDING,
                                        limit=SHOWN)
    alerts = [a for a in health.list_alerts(conn, actor=actor, limit=50)
              if a.get("task_status") == tasks.OPEN][:SHOWN]
    failed = outbox.list_outbox(conn, actor=actor, status="dead", limit=SHOWN)
    return Inbox([
        InboxEntry("tasks", tasks.count_open_tasks(conn, except_kinds=alert_kinds), "/tasks",
                   [{"id": t["id"], "text": t["title"], "says": tasks.title_words(t),
                     "group": t["group_name"] or ""} for t in open_tasks]),
        InboxEntry("follow_ups", records.count_follow_ups(conn, due_before=today_ends),
                   "/members",
                   [{"id": r["id"], "text": r["body"][:80], "member": r["number"],
                     "due_at": r["due_at"]} for r in due]),
        InboxEntry("reviews", moderation.count_pending(conn), "/automation/moderation",
                   [{"id": d["id"], "text": (d.get("text") or "")[:80],
                     "group": d["group_name"] or "", "member": d["member_number"]}
                    for d in reviews]),
        InboxEntry("alerts", tasks.count_open_tasks(conn, kinds=alert_kinds), "/health",
                   [{"id": a["id"], "text": a["text"], "says": a["says"],
                     "group": a["group_name"]} for a in alerts]),
        InboxEntry("failed_sends", outbox.outbox_counts(conn).get("dead", 0),
                   "/outbox?status=dead",
                   [{"id": r["id"], "text": (r.get("last_error") or "")[:80],
                     "group": r.get("group_name") or ""} for r in failed]),
    ])
