"""A fission campaign rehearsed on the sandbox before the real run (F20, F33).

The campaign's plan — stages, stock, costs, validity window, messages — is copied onto
sandbox groups made for the rehearsal, and simulated people go through the real event path:
seed members take part; each participant shares with probability ``share``; a sharer
brings a Poisson number of friends (mean ``friends``) who join through their code within
two days; a share ``leave`` of those leave again within the window. Newcomers take part
too (the worker's follow-ups run on the simulated clock), so the campaign grows in
generations until ``days`` pass or ``max_joins`` is reached. The outcome is the rehearsal
campaign's own report: how fast the stock goes, the K-factor, completions per day.

Seeded: the same settings give the same rehearsal. Screenshots of a share task are not
simulated (a person checks those).
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from qunyun.adapters.platforms.base import PlatformAdapter
from qunyun.adapters.platforms.sandbox.simulate import GIVEN
from qunyun.adapters.storage.tables import fission_participants, groups, identities
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.domain.actions import CapabilityLookup
from qunyun.domain.fission import Stage
from qunyun.domain.rehearsal import SURNAMES
from qunyun.domain.staff import Permission
from qunyun.services import audit, fission
from qunyun.services.errors import InvalidInput
from qunyun.services.ingest import IngestConfig, do_ingest_event
from qunyun.services.users import Actor

TICK = timedelta(minutes=30)  # how often the simulated worker settles and follows up


@dataclass(frozen=True, slots=True)
class Rehearsal:
    seeds: int = 30
    share: float = 0.5
    friends: float = 2.0
    leave: float = 0.1
    days: int = 7
    seed: int = 7
    max_joins: int = 20_000

    def check(self) -> None:
        if not 1 <= self.seeds <= 5_000:
            raise InvalidInput("seeds: between 1 and 5000")
        if not 0.0 <= self.share <= 1.0:
            raise InvalidInput("share: the share of participants who share, 0–1")
        if not 0.0 <= self.leave <= 1.0:
            raise InvalidInput("leave: the share of friends who leave again, 0–1")
        if not 0.0 <= self.friends <= 50.0:
            raise InvalidInput("friends: between 0 and 50 on average")
        if not 1 <= self.days <= 60:
            raise InvalidInput("days: between 1 and 60")
        if not 1 <= self.max_joins <= 200_000:
            raise InvalidInput("max_joins: between 1 and 200000")


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method (means here are small)."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def do_rehearse(uow: UnitOfWork, *, actor: Actor, campaign_id: int, plan: Rehearsal,
                adapter_for: Callable[[str], PlatformAdapter], config: IngestConfig,
                capabilities: CapabilityLookup, now: datetime) -> dict[str, Any]:
    """Rehearse ``campaign_id``'s plan on new sandbox groups, ending at ``now``; returns the
    rehearsal campaign's report (its id to open it on the page)."""
    actor.require(Permission.OPERATE)
    plan.check()
    rng = random.Random(plan.seed)
    sandbox = adapter_for("sandbox")
    start = now - timedelta(days=plan.days)
    with uow.read() as conn:
        source = fission.access_campaign(conn, actor=actor, campaign_id=campaign_id)
    tag = f"rh{campaign_id}-{int(now.timestamp())}"
    chats = [f"{tag}-g{i}" for i in range(len(source["group_ids"]))]
    names = {g["id"]: g["name"] for g in source["groups"]}
    serial = iter(range(1, 10**9))

    def person() -> str:
        return rng.choice(SURNAMES) + rng.choice(GIVEN) + str(rng.randint(1, 99))

    def feed(conn: Any, raw: dict[str, Any]) -> None:
        raw = {"id": f"{tag}-e{next(serial)}", **raw}
        for event in sandbox.parse(raw).events:
            do_ingest_event(conn, event, config=config, received_at=event.occurred_at)

    with uow.write() as conn:  # the rehearsal's groups and its seed members
        for i, chat in enumerate(chats):
            feed(conn, {"type": "group", "at": start.isoformat(), "chat": chat,
                        "chat_name": f"彩排·{names.get(source['group_ids'][i], chat)}"[:60],
                        "owner": f"{tag}-staff", "owner_name": "彩排顾问"})
        for n in range(plan.seeds):
            feed(conn, {"type": "join", "at": (start + timedelta(minutes=n)).isoformat(),
                        "chat": chats[n % len(chats)], "user": f"{tag}-s{n}",
                        "user_name": person(), "scene": "qr", "channel": "poster-a"})
        group_ids = [int(conn.execute(select(groups.c.id).where(
            groups.c.platform == "sandbox", groups.c.external_id == c)).scalar_one())
            for c in chats]
        stages = [Stage(int(s["invites"]), str(s["reward"]), int(s["stock"]),
                        int(s["cost_cents"]), str(s["kind"])) for s in source["stages"]]
        made = fission.do_create_campaign(
            conn, actor=actor, name=f"彩排·{source['name']}"[:128], group_ids=group_ids,
            stages=stages, account="rehearsal", valid_hours=int(source["valid_hours"]),
            texts=dict(source["texts"] or {}), now=start)
        seeds = [int(m) for m in conn.execute(select(identities.c.member_id).where(
            identities.c.platform == "sandbox", identities.c.external_id.in_(
                [f"{tag}-s{n}" for n in range(plan.seeds)])).order_by(identities.c.member_id)
        ).scalars()]
    rehearsal = int(made["id"])
    for member_id in seeds:
        fission.do_join(uow, actor=actor, adapter_for=adapter_for, campaign_id=rehearsal,
                        member_id=member_id, now=start)
    queue: list[tuple[datetime, int, dict[str, Any]]] = []
    considered = 0  # the last participant (by id) who has decided whether to share
    joins = 0
    hours = int(source["valid_hours"])

    def share_from(t: datetime) -> None:
        """Participants who took part since the last look decide whether to share, and
        their friends' joins (and some leaves) are put on the clock."""
        nonlocal joins, considered
        with uow.read() as conn:
            fresh = conn.execute(select(fission_participants.c.id,
                                        fission_participants.c.code).where(
                fission_participants.c.campaign_id == rehearsal,
                fission_participants.c.id > considered)
                .order_by(fission_participants.c.id)).all()
        for participant_id, code in fresh:
            considered = int(participant_id)
            if rng.random() >= plan.share:
                continue
            for _ in range(_poisson(rng, plan.friends)):
                if joins >= plan.max_joins:
                    return
                joins += 1
                at = t + timedelta(minutes=rng.randint(10, 48 * 60))
                user = f"{tag}-f{joins}"
                chat = rng.choice(chats)
                heapq.heappush(queue, (at, next(serial), {
                    "type": "join", "chat": chat, "user": user, "user_name": person(),
                    "scene": "qr", "channel": code}))
                if rng.random() < plan.leave:
                    away = at + timedelta(minutes=rng.randint(5, max(6, hours * 60 - 5)))
                    heapq.heappush(queue, (away, next(serial), {
                        "type": "leave", "chat": chat, "user": user}))

    t = start
    share_from(t)
    arrived = 0  # friends' joins that happened before the rehearsal's end
    while t < now:
        t = min(t + TICK, now)
        with uow.write() as conn:
            while queue and queue[0][0] <= t:
                at, _n, raw = heapq.heappop(queue)
                arrived += raw["type"] == "join"
                feed(conn, {**raw, "at": at.isoformat()})
            fission.validate_due(conn, now=t, capabilities=capabilities)
        while fission.follow_up(uow, adapter_for=adapter_for, capabilities=capabilities,
                                now=t, public_url=""):
            pass
        share_from(t)
    with uow.write() as conn:
        audit.record(conn, actor=actor.label, action="fission.rehearse",
                     object_type="campaign", object_id=campaign_id,
                     detail={"rehearsal": rehearsal, **asdict(plan)})
        report = fission.report(conn, actor=actor, campaign_id=rehearsal,
                                tz=ZoneInfo(config.timezone))
    return {"campaign_id": rehearsal, "source_id": campaign_id, "settings": asdict(plan),
            "joins": arrived, "still_coming": joins - arrived,
            "report": {**{k: report[k] for k in (
                "participants", "invites_sent", "valid_invites", "revoked", "completed",
                "completion_rate", "k_factor", "cost", "daily")},
                "stages": [{k: v for k, v in s.items() if k != "campaign_id"}
                           for s in report["stages"]]}}
