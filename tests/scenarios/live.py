"""A live community for the seed scenarios: raw sandbox events fed through the real event
path as they happen, the worker delivering on the same clock, every automation switched on
as an operator would set it up.

Nothing here stands in for qunyun's own code: events go through the sandbox adapter's
parser, ingest, the rules and the outbox; the worker's delivery and the scheduler run with
the scenario's clock (``now=``) instead of the wall clock, so a week of talk takes a second.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import (
    groups,
    identities,
    moderation_decisions,
    outbox,
)
from qunyun.bootstrap import Runtime
from qunyun.clock import utcnow
from qunyun.services import automation, faqs, schedules
from qunyun.services import groups as groups_service
from qunyun.services import outbox as outbox_service
from qunyun.services.ingest import IngestResult, do_ingest_event
from qunyun.services.users import SYSTEM

TZ = ZoneInfo("Asia/Shanghai")
WELCOME = "欢迎 @{name} 加入{group}！请先看群规：{rules}"
RULES = "禁止发广告和二维码；有问题@顾问"
FAQS = (
    (("请问团购价格多少", "团购价是多少"), "团购价以今晚 20:00 直播公布为准，群公告里有价目表。"),
    (("定金可以退吗", "交了定金还能退吗"), "定金在活动结束前可全额退，联系顾问办理即可。"),
    (("什么时候发货", "多久能发货"), "下单后 3-7 天内发货，定制款 15 天。"),
)


def local(day: datetime, hh: int = 0, mm: int = 0) -> datetime:
    """``hh:mm`` team-local on ``day``'s local date."""
    return day.astimezone(TZ).replace(hour=hh, minute=mm, second=0, microsecond=0)


def days_ago(n: int) -> datetime:
    """Local midnight ``n`` days before today (scenarios are anchored to the real clock so
    playbook jobs, computed against it, land inside them)."""
    return local(utcnow() - timedelta(days=n))


@dataclass
class Live:
    conn: Connection
    runtime: Runtime
    seq: int = 0
    results: list[IngestResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        # the limiter counts real seconds; a scenario's week passes in one, so rate limits
        # would only defer sends to wall-clock times the scenario never reaches
        self.runtime.policy = replace(self.runtime.policy, platform_per_second=1e6,
                                      group_per_minute=1e6)

    # --- operator setup ---------------------------------------------------------------

    def switch_everything_on(self, **moderation: Any) -> None:
        """Welcome (batched over a minute), FAQ replies, moderation, check-ins with refund
        tiers, points: what an operator turns on for a running community."""
        def put(section: str, **values: Any) -> None:
            automation.do_update_settings(self.conn, actor=SYSTEM, section=section,
                                          values=values)

        put("welcome", enabled=True, batch_seconds=60)
        put("faq", enabled=True)
        put("moderation", enabled=True, **moderation)
        put("checkin", enabled=True, keywords=["打卡", "签到"],
            refund_tiers=[{"min_checkins": 7, "percent": 100},
                          {"min_checkins": 5, "percent": 50}])
        put("points", enabled=True)
        for questions, answer in FAQS:
            faqs.do_create_faq(self.conn, actor=SYSTEM, questions=list(questions),
                               answer=answer, cooldown_seconds=600)

    def group(self, chat: str, name: str, at: datetime, *, owner: str = "staff-0",
              owner_name: str = "顾问小林", admins: Sequence[str] = (),
              welcome: str = WELCOME, rules: str = RULES, **changes: Any) -> int:
        """Open a group the way the platform reports it, then set it up on its page."""
        self.feed({"type": "group", "at": at, "chat": chat, "chat_name": name,
                   "owner": owner, "owner_name": owner_name, "admins": list(admins)})
        gid = self.conn.execute(select(groups.c.id).where(
            groups.c.external_id == chat)).scalar_one()
        groups_service.do_update_group(self.conn, actor=SYSTEM, group_id=gid, now=at, changes={
            "welcome_template": welcome, "rules_text": rules, **changes})
        return int(gid)

    # --- events -------------------------------------------------------------------------

    def feed(self, raw: dict[str, Any]) -> IngestResult:
        """One raw event, received as it happens (the worker has kept up until then)."""
        self.seq += 1
        at: datetime = raw["at"]
        self.catch_up(at)
        result = self.receive(raw, at)
        self.results.append(result)
        return result

    def receive(self, raw: dict[str, Any], at: datetime) -> IngestResult:
        """The platform's part: the raw event through the sandbox adapter, into ingest."""
        data = {"id": f"e{self.seq}", **raw, "at": at.isoformat()}
        if data["type"] in ("message", "private"):
            data.setdefault("message_id", data["id"])
        (ev,) = self.runtime.adapters["sandbox"].parse(data).events
        return do_ingest_event(self.conn, ev, config=self.runtime.ingest_config,
                               received_at=at)

    def join(self, chat: str, user: str, name: str, at: datetime, **extra: Any) -> IngestResult:
        return self.feed({"type": "join", "at": at, "chat": chat, "user": user,
                          "user_name": name, "scene": extra.pop("scene", "invite"), **extra})

    def say(self, chat: str, user: str, text: str, at: datetime, *, name: str = "",
            **extra: Any) -> IngestResult:
        return self.feed({"type": "message", "at": at, "chat": chat, "user": user,
                          "user_name": name, "text": text, **extra})

    def request(self, chat: str, user: str, name: str, at: datetime,
                **extra: Any) -> IngestResult:
        """Ask to join a group whose admins approve newcomers."""
        return self.feed({"type": "join_request", "at": at, "chat": chat, "user": user,
                          "user_name": name, **extra})

    def answer(self, user: str, text: str, at: datetime) -> IngestResult:
        """Write to the team's bot in private (an applicant answering its question)."""
        return self.feed({"type": "private", "at": at, "user": user, "text": text})

    def catch_up(self, until: datetime) -> None:
        """The worker running all along: each send goes out when it falls due."""
        last = None
        while True:
            due = self.conn.execute(select(outbox.c.next_attempt_at).where(
                outbox.c.status == "pending", outbox.c.next_attempt_at <= until)
                .order_by(outbox.c.next_attempt_at).limit(1)).scalar()
            if due is None:
                return
            assert due != last, f"the worker made no progress at {due}"
            last = due
            self.deliver(due)

    def deliver(self, at: datetime) -> None:
        """The worker at ``at``: everything due goes out (or expires, or waits for a person)."""
        while True:
            stats = outbox_service.deliver_due(
                self.runtime.uow, adapters=self.runtime.adapters, limiter=self.runtime.limiter,
                worker_id="scenario", policy=self.runtime.policy, rng=random.Random(1),
                now=lambda: at)
            if not (stats.delivered or stats.retried or stats.dead):
                return

    def run_schedule(self, times: Iterable[datetime]) -> None:
        """The worker waking at each of ``times``: due jobs fire, their sends go out."""
        for t in sorted(set(times)):
            self.catch_up(t)
            schedules.fire_due(self.runtime.uow, config=self.runtime.ingest_config, now=t)
            self.catch_up(t + timedelta(minutes=1))

    # --- what the operator sees -------------------------------------------------------------

    def member(self, user: str) -> int:
        return int(self.conn.execute(select(identities.c.member_id).where(
            identities.c.platform == "sandbox", identities.c.external_id == user)).scalar_one())

    def sent(self, action_type: str = "send_text", *, rule: str | None = None,
             status: str = "delivered") -> list[dict[str, Any]]:
        """What went out (or waits for a person), as stored in the outbox."""
        stmt = select(outbox).where(outbox.c.action_type == action_type,
                                    outbox.c.status == status).order_by(outbox.c.id)
        if rule is not None:
            stmt = stmt.where(outbox.c.rule.like(rule))
        return [dict(r) for r in self.conn.execute(stmt).mappings()]

    def greeted(self) -> list[int]:
        """Member ids mentioned by welcome messages that went out (each mention once)."""
        return [m for row in self.sent(rule="welcome")
                for m in row["payload"]["mention_member_ids"]]

    def decisions(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(
            select(moderation_decisions).order_by(moderation_decisions.c.id)).mappings()]
