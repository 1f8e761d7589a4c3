"""The one place that wires settings, storage, adapters, rules and the rate limiter."""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Generic, TypeVar

from sqlalchemy import Engine

from qunyun.adapters import logs
from qunyun.adapters.platforms.base import PlatformAdapter
from qunyun.adapters.platforms.sandbox import SandboxAdapter
from qunyun.adapters.platforms.sandbox.send import SandboxStore
from qunyun.adapters.platforms.telegram.adapter import TelegramAdapter
from qunyun.adapters.platforms.telegram.client import TelegramClient
from qunyun.adapters.platforms.wecom.adapter import WecomAdapter
from qunyun.adapters.platforms.wecom.client import WecomClient
from qunyun.adapters.ratelimit import LocalRateLimiter, RateLimiter, RedisRateLimiter
from qunyun.adapters.secretbox import SecretBox
from qunyun.adapters.storage.db import make_engine
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.analytics import mirror as analytics_mirror
from qunyun.analytics.mirror import MirrorSetup
from qunyun.clock import Clock, wall_clock
from qunyun.config import Settings
from qunyun.domain.actions import Capability
from qunyun.engine import Rule
from qunyun.engine.rules import default_rules
from qunyun.services import (
    broadcasts,
    confirmations,
    dissolution,
    entry,
    fission,
    group_merges,
    health,
    join_codes,
    lifecycle,
    plans,
    playbooks,
    telegram,
    wecom,
    wecom_callbacks,
)
from qunyun.services.automation import AutomationCache
from qunyun.services.errors import NotFound
from qunyun.services.ingest import IngestConfig, ScheduledHandler
from qunyun.services.outbox import DeliveryPolicy

# what a fired job of each kind does beyond the rules
SCHEDULED_HANDLERS: dict[str, ScheduledHandler] = {
    broadcasts.JOB_KIND: broadcasts.fire_broadcast,
    playbooks.JOB_KIND: playbooks.fire_step,
    dissolution.JOB_KIND: dissolution.fire_step,
    group_merges.JOB_KIND: group_merges.fire_finish,
}

log = logging.getLogger(__name__)


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
    # connector work the worker runs every so often: (name, every seconds, job → items done)
    periodic: list[tuple[str, float, Callable[[Runtime], int]]] = field(default_factory=list)
    # where now comes from: the wall clock, or a fixed time (``clock.FixedTime``) for a
    # rehearsal or a test
    now: Callable[[], datetime] = wall_clock

    @property
    def box(self) -> SecretBox:
        return SecretBox(self.secret_key)

    def adapter(self, platform: str) -> PlatformAdapter:
        """The platform's adapter; a platform this installation has none for is refused
        (404 on the API, exit 2 in a command) in one sentence everywhere."""
        found = self.adapters.get(platform)
        if found is None:
            raise NotFound("no adapter for platform {platform!r}", platform=platform)
        return found

    def capabilities(self, platform: str) -> frozenset[Capability]:
        adapter = self.adapters.get(platform)
        return adapter.capabilities if adapter else frozenset()

    @property
    def ingest_config(self) -> IngestConfig:
        return IngestConfig(rules=self.rules, capabilities=self.capabilities,
                            timezone=self.settings.timezone, automation=self.automation,
                            scheduled=SCHEDULED_HANDLERS, public_url=self.settings.public_url)

    @property
    def mirror(self) -> MirrorSetup:
        return MirrorSetup.of(self.settings)

    def use_uow(self, uow: UnitOfWork) -> None:
        """Hand out transactions from ``uow``, whose time is this runtime's: it reads
        ``self.now`` each time, so a fixed time set later (``rt.now = FixedTime(…)``) reaches
        every row a service stamps."""
        uow.now = lambda: self.now()
        self.uow = uow

    def clock(self) -> Clock:
        """Now, in the team's time zone (segments and lead scores are relative to it)."""
        return Clock(self.now(), self.settings.tz)

    def close(self) -> None:
        for adapter in self.adapters.values():
            adapter.close()
        self.engine.dispose()


def private_dir(path: Path) -> None:
    """The data folder (database, key, uploads' leftovers): the owner's alone."""
    if not path.exists():
        path.mkdir(parents=True, mode=0o700)
        path.chmod(0o700)  # mkdir's mode is filtered by the umask


def write_private(path: Path, text: str) -> None:
    """Write a file created readable by its owner only (written first and chmod-ed after,
    a key or password was briefly readable by everyone on the machine)."""
    private_dir(path.parent)
    if path.exists():
        path.chmod(0o600)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _secret_key(settings: Settings) -> str:
    """Use the configured key, else one kept in the data dir so sessions survive restarts."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    private_dir(path.parent)
    key = secrets.token_urlsafe(48)
    write_private(path, key)
    return key


ClientT = TypeVar("ClientT")


class _ClientCache(Generic[ClientT]):
    """One API client per account (a corp, a bot), rebuilt when the account's stored
    credential changes; shared by the worker's threads (a replaced client is not closed:
    another thread may still be calling with it)."""

    def __init__(self) -> None:
        self._clients: dict[str, tuple[str, ClientT]] = {}
        self._lock = threading.Lock()

    def get(self, account: str, credential: str, make: Callable[[], ClientT]) -> ClientT:
        with self._lock:
            cached = self._clients.get(account)
            if cached is None or cached[0] != credential:
                cached = (credential, make())
                self._clients[account] = cached
            return cached[1]


class _WecomClients:
    """One API client per corp, rebuilt when its stored credentials change."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime  # its uow is read at call time (tests swap it)
        self._clients: _ClientCache[WecomClient] = _ClientCache()

    def __call__(self, corp_id: str) -> WecomClient:
        rt = self._runtime
        with rt.uow.read() as conn:
            found = wecom.corp_secrets(conn, rt.box, corp_id)
        if found is None:
            raise NotFound("WeCom corp {corp_id!r} is not connected", corp_id=corp_id)
        return self._clients.get(corp_id, found.secret, lambda: WecomClient(
            corp_id, found.secret, base_url=rt.settings.wecom_api_base, limiter=rt.limiter))

    def chat_home(self, chat_id: str) -> tuple[str, str] | None:
        with self._runtime.uow.read() as conn:
            return wecom.chat_home(conn, chat_id)


class _TelegramClients:
    """One API client per bot, rebuilt when its stored token changes; a chat's client is its
    administrator bot's."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._clients: _ClientCache[TelegramClient] = _ClientCache()

    def bot(self, bot_id: str) -> TelegramClient:
        rt = self._runtime
        with rt.uow.read() as conn:
            found = telegram.bot_secrets(conn, rt.box, bot_id)
        if found is None:
            raise NotFound("Telegram bot {bot_id} not found", bot_id=bot_id)
        return self._clients.get(bot_id, found.token,
                                 lambda: telegram_clients(rt)(found.token))

    def for_chat(self, chat_id: str) -> TelegramClient | None:
        with self._runtime.uow.read() as conn:
            bot_id = telegram.bot_for_chat(conn, chat_id)
        return self.bot(bot_id) if bot_id else None

    def for_user(self, user_id: str, chat_id: str | None) -> TelegramClient | None:
        with self._runtime.uow.read() as conn:
            prefer = telegram.bot_for_chat(conn, chat_id) if chat_id else None
            bot_id = telegram.bot_for_user(conn, user_id, prefer=prefer)
        return self.bot(bot_id) if bot_id else None


def make_telegram_adapter(runtime: Runtime) -> TelegramAdapter:
    clients = _TelegramClients(runtime)
    return TelegramAdapter(client_for=clients.for_chat, bot_client=clients.bot,
                           private_client_for=clients.for_user)


def telegram_clients(runtime: Runtime) -> Callable[[str], TelegramClient]:
    """A client for a token, at the configured API base (tests point it at the fake)."""
    return lambda token: TelegramClient(token, base_url=runtime.settings.telegram_api_base)


def _telegram_updates(rt: Runtime) -> int:
    adapter = rt.adapters.get(TelegramAdapter.name)
    if not isinstance(adapter, TelegramAdapter):
        return 0
    stats = telegram.process_and_sync(rt.uow, adapter=adapter, config=rt.ingest_config,
                                      box=rt.box, clients=telegram_clients(rt), now=rt.now())
    return stats.processed + stats.failed


def _telegram_poll(rt: Runtime) -> int:
    """Short polls for the bots without a webhook (a long poll would hold the worker)."""
    stored, failed = telegram.poll_all(rt.uow, box=rt.box, clients=telegram_clients(rt),
                                       now=rt.now())
    for bot_id, error in failed.items():
        log.warning("Telegram polling for bot %s failed: %s", bot_id, error)
    return stored


def make_wecom_adapter(runtime: Runtime) -> WecomAdapter:
    """The WeCom adapter reading each corp's credentials from the runtime's database."""
    clients = _WecomClients(runtime)
    return WecomAdapter(clients=clients, chat_home=clients.chat_home)


def wecom_adapter(runtime: Runtime) -> WecomAdapter | None:
    adapter = runtime.adapters.get(WecomAdapter.name)
    return adapter if isinstance(adapter, WecomAdapter) else None


def _wecom_callbacks(rt: Runtime) -> int:
    adapter = wecom_adapter(rt)
    if adapter is None:
        return 0
    stats = wecom_callbacks.process_callbacks(rt.uow, adapter=adapter, config=rt.ingest_config)
    if stats.reconciled:
        join_codes.rotate_join_codes(rt.uow, adapters=rt.adapters)
    return stats.processed + stats.failed


def _confirmations(rt: Runtime) -> int:
    now = rt.now()
    submitted = confirmations.submit_due(rt.uow, adapters=rt.adapters, now=now)
    polled = confirmations.poll(rt.uow, adapters=rt.adapters, now=now)
    return submitted.submitted + polled.sent + polled.failed


def _refresh_mirror(rt: Runtime) -> int:
    """The worker's periodic job: start a refresh in a thread unless one is running."""
    analytics_mirror.start_refresh(rt.engine, rt.mirror)
    return 0


def _join_request_timeouts(rt: Runtime) -> int:
    """Join requests nobody answered within their group's ``timeout_hours`` are declined."""
    with rt.uow.write() as conn:
        return len(entry.expire_due(conn, now=rt.now(), capabilities=rt.capabilities))


def _fission_invites(rt: Runtime) -> int:
    """Invites whose window has passed become valid (or are taken back), inviters counted,
    rewarded and told: every few seconds, since a campaign valid at once waits on it."""
    with rt.uow.write() as conn:
        return fission.validate_due(conn, now=rt.now(), capabilities=rt.capabilities,
                                    freshness=rt.automation.get(conn).team.freshness)


def _fission_follow_up(rt: Runtime) -> int:
    """Newcomers get their own code and poster; reserved rewards their claim link, and
    completers the invitation to their group."""
    return fission.follow_up(rt.uow, adapter_for=rt.adapter, capabilities=rt.capabilities,
                             now=rt.now(), public_url=rt.settings.public_url)


def _group_lifecycle(rt: Runtime) -> int:
    """Groups move by the lifecycle's rules (recruiting → active at capacity, quiet → cooling)."""
    with rt.uow.write() as conn:
        return len(lifecycle.advance(conn, now=rt.now(), tz=rt.settings.tz))


def _group_merges(rt: Runtime) -> int:
    """Merged members whose new group got its join code since are invited."""
    with rt.uow.write() as conn:
        return group_merges.invite_pending(conn, capabilities=rt.capabilities, now=rt.now())


def _plan_variance(rt: Runtime) -> int:
    """A plan's finished days that fell short reach its PMs as a task, once."""
    with rt.uow.write() as conn:
        return len(plans.raise_variance(conn, tz=rt.settings.tz, now=rt.now()))


def _health_alerts(rt: Runtime) -> int:
    with rt.uow.write() as conn:
        return len(health.do_raise_alerts(conn, tz=rt.settings.tz))


def build_runtime(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    adapters: dict[str, PlatformAdapter] | None = None,
    rules: Sequence[Rule] | None = None,
    limiter: RateLimiter | None = None,
) -> Runtime:
    settings = settings or Settings()
    logs.install()
    engine = engine or make_engine(settings.resolved_database_url())
    if limiter is None:
        limiter = (RedisRateLimiter.from_url(settings.redis_url) if settings.redis_url
                   else LocalRateLimiter())
    secret_key = _secret_key(settings)
    with_wecom = adapters is None
    if adapters is None:
        store = SandboxStore(settings.resolved_sandbox_store())
        adapters = {"sandbox": SandboxAdapter(store, profile=settings.sandbox_profile,
                                              latency_seconds=settings.sandbox_latency_seconds)}
    policy = DeliveryPolicy(
        max_attempts=settings.outbox_max_attempts,
        backoff_base_seconds=settings.outbox_backoff_base_seconds,
        backoff_cap_seconds=settings.outbox_backoff_cap_seconds,
        lease_seconds=settings.outbox_lease_seconds, batch_size=settings.outbox_batch_size,
        platform_per_second=settings.rate_platform_per_second,
        group_per_minute=settings.rate_group_per_minute)
    rt = Runtime(settings=settings, engine=engine, uow=UnitOfWork(engine), adapters=adapters,
                 rules=list(rules) if rules is not None else default_rules(), limiter=limiter,
                 secret_key=secret_key, policy=policy,
                 periodic=[("wecom_callbacks", 0.0, _wecom_callbacks),
                           ("telegram_updates", 0.0, _telegram_updates),
                           ("telegram_poll", settings.telegram_poll_seconds, _telegram_poll),
                           ("confirmations", settings.wecom_poll_seconds, _confirmations),
                           ("join_request_timeouts", 60.0, _join_request_timeouts),
                           ("fission_invites", 5.0, _fission_invites),
                           ("fission_follow_up", 10.0, _fission_follow_up),
                           ("health_alerts", 3600.0, _health_alerts),
                           ("group_lifecycle", 3600.0, _group_lifecycle),
                           ("group_merges", 300.0, _group_merges),
                           ("plan_variance", 3600.0, _plan_variance)])
    rt.use_uow(rt.uow)
    if settings.analytics_mirror:
        rt.periodic.append(("analytics_mirror", settings.analytics_mirror_minutes * 60,
                            _refresh_mirror))
    if with_wecom:
        rt.adapters["wecom"] = make_wecom_adapter(rt)
        rt.adapters["telegram"] = make_telegram_adapter(rt)
    return rt
