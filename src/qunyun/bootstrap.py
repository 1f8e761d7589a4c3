"""The one place that wires settings, storage, adapters, rules and the rate limiter."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from qunyun.adapters.platforms.base import PlatformAdapter
from qunyun.adapters.platforms.sandbox import SandboxAdapter
from qunyun.adapters.platforms.sandbox.send import SandboxStore
from qunyun.adapters.ratelimit import LocalRateLimiter, RateLimiter, RedisRateLimiter
from qunyun.adapters.storage.db import make_engine
from qunyun.adapters.storage.tables import utcnow
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.config import Settings
from qunyun.domain.actions import Capability
from qunyun.engine import Rule
from qunyun.engine.rules import default_rules
from qunyun.services import broadcasts, playbooks
from qunyun.services.automation import AutomationCache
from qunyun.services.ingest import IngestConfig, ScheduledHandler
from qunyun.services.outbox import DeliveryPolicy
from qunyun.services.segments import Clock

# what a fired job of each kind does beyond the rules
SCHEDULED_HANDLERS: dict[str, ScheduledHandler] = {
    broadcasts.JOB_KIND: broadcasts.fire_broadcast,
    playbooks.JOB_KIND: playbooks.fire_step,
}


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    uow: UnitOfWork
    adapters: dict[str, PlatformAdapter]
    rules: Sequence[Rule]
    limiter: RateLimiter
    secret_key: str
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    # compiled automation (word lists, FAQ indexes, settings), rebuilt when they change
    automation: AutomationCache = field(default_factory=AutomationCache)

    def capabilities(self, platform: str) -> frozenset[Capability]:
        adapter = self.adapters.get(platform)
        return adapter.capabilities if adapter else frozenset()

    @property
    def ingest_config(self) -> IngestConfig:
        return IngestConfig(rules=self.rules, capabilities=self.capabilities,
                            timezone=self.settings.timezone, automation=self.automation,
                            scheduled=SCHEDULED_HANDLERS)

    def clock(self) -> Clock:
        """Now, in the team's time zone (segments and lead scores are relative to it)."""
        return Clock(utcnow(), self.settings.tz)

    def close(self) -> None:
        for adapter in self.adapters.values():
            adapter.close()
        self.engine.dispose()


def _secret_key(settings: Settings) -> str:
    """Use the configured key, else one kept in the data dir so sessions survive restarts."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def build_runtime(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    adapters: dict[str, PlatformAdapter] | None = None,
    rules: Sequence[Rule] | None = None,
    limiter: RateLimiter | None = None,
) -> Runtime:
    settings = settings or Settings()
    engine = engine or make_engine(settings.resolved_database_url())
    if adapters is None:
        store = SandboxStore(settings.resolved_sandbox_store())
        adapters = {"sandbox": SandboxAdapter(store, profile=settings.sandbox_profile,
                                              latency_seconds=settings.sandbox_latency_seconds)}
    if limiter is None:
        limiter = (RedisRateLimiter.from_url(settings.redis_url) if settings.redis_url
                   else LocalRateLimiter())
    policy = DeliveryPolicy(
        max_attempts=settings.outbox_max_attempts,
        backoff_base_seconds=settings.outbox_backoff_base_seconds,
        backoff_cap_seconds=settings.outbox_backoff_cap_seconds,
        lease_seconds=settings.outbox_lease_seconds, batch_size=settings.outbox_batch_size,
        platform_per_second=settings.rate_platform_per_second,
        group_per_minute=settings.rate_group_per_minute)
    return Runtime(settings=settings, engine=engine, uow=UnitOfWork(engine), adapters=adapters,
                   rules=list(rules) if rules is not None else default_rules(), limiter=limiter,
                   secret_key=_secret_key(settings), policy=policy)
