"""Run a simulated community through the real event path (F33).

Each generated raw event is parsed by the sandbox adapter and ingested with its own time as
the receive time, so rules see the history as it happens (welcome windows, cool-downs,
streaks); transactions are batched. ``do_setup_sample_automation`` switches on a typical
configuration (moderation, check-ins, points, a few FAQs) for demos and trials.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from qunyun.adapters.platforms.base import PlatformAdapter
from qunyun.adapters.platforms.sandbox.simulate import Scenario, generate
from qunyun.adapters.storage.tables import faqs
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.domain.staff import Permission
from qunyun.services import automation
from qunyun.services.faqs import do_create_faq
from qunyun.services.ingest import IngestConfig, do_ingest_event
from qunyun.services.users import Actor

SAMPLE_FAQS = (
    (("请问团购价格多少", "团购价是多少"), "团购价以今晚 20:00 直播公布为准，群公告里有价目表。"),
    (("定金可以退吗", "交了定金还能退吗"), "定金在活动结束前可全额退，联系顾问办理即可。"),
    (("什么时候发货", "多久能发货"), "下单后 3-7 天内发货，定制款 15 天。"),
    (("可以开发票吗", "能开发票吗"), "可以开增值税普通发票，下单时备注抬头。"),
)


@dataclass
class SimulationReport:
    events: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    rules_fired: Counter[str] = field(default_factory=Counter)
    outbox_rows: int = 0
    duplicates: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"events": self.events, "by_type": dict(self.kinds),
                "rules_fired": dict(self.rules_fired), "outbox_rows": self.outbox_rows,
                "duplicates": self.duplicates}


def do_setup_sample_automation(conn: Connection, *, actor: Actor) -> None:
    """Moderation, check-ins, points and FAQ replies on, with four sample FAQs (once)."""
    actor.require(Permission.OPERATE)
    automation.do_update_settings(conn, actor=actor, section="moderation",
                                  values={"enabled": True})
    automation.do_update_settings(conn, actor=actor, section="checkin", values={
        "enabled": True, "refund_tiers": [{"min_checkins": 10, "percent": 100},
                                          {"min_checkins": 6, "percent": 50}]})
    automation.do_update_settings(conn, actor=actor, section="points",
                                  values={"enabled": True})
    automation.do_update_settings(conn, actor=actor, section="faq", values={"enabled": True})
    if conn.execute(select(faqs.c.id).limit(1)).first() is None:
        for questions, answer in SAMPLE_FAQS:
            do_create_faq(conn, actor=actor, questions=list(questions), answer=answer,
                          cooldown_seconds=1800)


def run_simulation(uow: UnitOfWork, *, adapter: PlatformAdapter, config: IngestConfig,
                   scenario: Scenario, actor: Actor, batch: int = 500) -> SimulationReport:
    actor.require(Permission.OPERATE)
    report = SimulationReport()
    raws = generate(scenario)
    done = False
    while not done:
        with uow.write() as conn:
            for _ in range(batch):
                raw = next(raws, None)
                if raw is None:
                    done = True
                    break
                report.kinds[raw["type"]] += 1
                parsed = adapter.parse({k: v for k, v in raw.items() if v is not None})
                for event in parsed.events:
                    result = do_ingest_event(conn, event, config=config,
                                             received_at=event.occurred_at)
                    report.events += 1
                    report.duplicates += result.duplicate
                    report.rules_fired.update(result.rules_fired)
                    report.outbox_rows += len(result.outbox_ids)
    return report
