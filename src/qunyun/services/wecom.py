"""The WeCom connector's own state: connected corps and the callback inbox. Group sync and
the corp-tag mirror (``wecom_sync``), join codes (群活码) with rotation (``wecom_join_codes``)
and group welcome templates (``wecom_welcome``) build on it.

Callbacks are stored first and processed after (WeCom waits 5 s and retries 3 times): the
endpoint only verifies, decrypts and inserts a row keyed by the digest of the decrypted XML,
so a retry is one row. Processing parses through the adapter and ingests the domain events
like any platform's; what a callback leaves unknown is read back with ``groupchat/get`` and
applied as a roster (services/rosters.py). API calls are made outside database transactions.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from qunyun.adapters.platforms.base import ParseError, PlatformError
from qunyun.adapters.platforms.wecom import parse as wecom_parse
from qunyun.adapters.platforms.wecom.adapter import WecomAdapter
from qunyun.adapters.platforms.wecom.client import WecomApiError
from qunyun.adapters.platforms.wecom.crypto import CallbackCryptoError, WecomCrypto, signature
from qunyun.adapters.secretbox import SecretBox
from qunyun.adapters.storage.tables import (
    wecom_chats,
    wecom_corps,
)
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.clock import utcnow
from qunyun.domain.staff import Permission
from qunyun.services import audit, raw_inbox
from qunyun.services.errors import AccessDenied, InvalidInput, NotFound, ServiceError
from qunyun.services.ingest import IngestConfig, do_ingest_event
from qunyun.services.raw_inbox import FAILED, PROCESSED
from qunyun.services.rosters import RosterChanges
from qunyun.services.users import Actor

log = logging.getLogger(__name__)
PLATFORM = wecom_parse.PLATFORM
_CORP_ID = re.compile(r"^[A-Za-z0-9_-]{4,64}$")
_TOKEN = re.compile(r"^[A-Za-z0-9]{1,32}$")
MAX_JOIN_CODE_GROUPS = 5
GONE = {40050, 49008}  # the group does not exist / was dismissed


def check_setup(uow: UnitOfWork, *, actor: Actor, box: SecretBox, adapter: WecomAdapter,
                corp_id: str, now: datetime) -> list[str]:
    """The dashboard's "verify" button, end to end: our callback check answers a signed
    echostr with its plaintext (as WeCom's own check does), and the secret gets an access
    token. Staff who operate only: it spends the corp's API quota and refreshes its token."""
    actor.require(Permission.OPERATE)
    with uow.read() as conn:
        get_corp(conn, actor=actor, corp_id=corp_id)  # 404 for an unknown corp
        found = corp_secrets(conn, box, corp_id)
    if found is None:
        raise NotFound(f"WeCom corp {corp_id!r} is not connected")
    expected = str(secrets.randbelow(10 ** 18))
    ts, nonce = str(int(now.timestamp())), secrets.token_hex(5)
    echostr = found.crypto.encrypt(expected)
    sig = signature(found.token, ts, nonce, echostr)
    checks: list[str] = []
    with uow.read() as conn:
        try:
            plain = verify_url(conn, box=box, corp_id=corp_id, msg_signature=sig, timestamp=ts,
                               nonce=nonce, echostr=echostr, now=now, max_age_seconds=60)
            checks.append("回调验证通过 (callback check passed)" if plain == expected
                          else "回调验证失败 (callback check failed)")
        except ServiceError as exc:
            checks.append(f"回调验证失败: {exc}")
    try:
        adapter.client(corp_id).token(refresh=True)
        checks.append("API 令牌获取成功 (access token OK)")
    except PlatformError as exc:  # network failures too: the client wraps them
        checks.append(f"API 令牌获取失败: {exc}")
    return checks


@dataclass(frozen=True, slots=True)
class CorpSecrets:
    corp_id: str
    agent_id: int
    secret: str
    token: str
    aes_key: str

    @property
    def crypto(self) -> WecomCrypto:
        return WecomCrypto(self.token, self.aes_key, self.corp_id)


def callback_path(corp_id: str) -> str:
    return f"/callbacks/wecom/{corp_id}"


# --- corps ----------------------------------------------------------------------------------


def do_add_corp(conn: Connection, *, actor: Actor, box: SecretBox, corp_id: str, agent_id: int,
                secret: str, token: str, aes_key: str, name: str = "",
                now: datetime) -> dict[str, Any]:
    """Connect a corp, or replace its credentials; the secrets are stored sealed."""
    actor.require(Permission.MANAGE_USERS)
    corp_id = corp_id.strip()
    if not _CORP_ID.match(corp_id):
        raise InvalidInput("corp_id: letters and digits, 4–64 characters (企业ID, e.g. ww…)")
    if agent_id <= 0:
        raise InvalidInput("agent_id: the self-built app's AgentId, a positive number")
    if not secret.strip():
        raise InvalidInput("secret: the app's Secret is required")
    if not _TOKEN.match(token):
        raise InvalidInput("token: 1–32 letters or digits (回调配置的 Token)")
    try:
        WecomCrypto(token, aes_key, corp_id)
    except CallbackCryptoError as exc:
        raise InvalidInput(f"aes_key: {exc}") from None
    values = {"name": name.strip()[:128], "agent_id": agent_id, "secret": box.seal(secret),
              "token": box.seal(token), "aes_key": box.seal(aes_key), "updated_at": now}
    existing = conn.execute(select(wecom_corps.c.id).where(
        wecom_corps.c.corp_id == corp_id)).scalar()
    if existing is None:
        conn.execute(wecom_corps.insert().values(corp_id=corp_id, status={}, created_at=now,
                                                 **values))
    else:
        conn.execute(update(wecom_corps).where(wecom_corps.c.id == existing).values(**values))
    audit.record(conn, actor=actor.label, action="wecom.add_corp" if existing is None
                 else "wecom.update_corp", object_type="wecom_corp", object_id=corp_id,
                 detail={"agent_id": agent_id, "name": values["name"]})
    return get_corp(conn, actor=actor, corp_id=corp_id)


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"corp_id": row["corp_id"], "name": row["name"], "agent_id": row["agent_id"],
            "status": dict(row["status"] or {}), "callback_path": callback_path(row["corp_id"]),
            "created_at": row["created_at"], "updated_at": row["updated_at"]}


def list_corps(conn: Connection, *, actor: Actor) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    rows = conn.execute(select(wecom_corps).order_by(wecom_corps.c.id)).mappings()
    out = [_public(dict(r)) for r in rows]
    pending = raw_inbox.pending_by_account(conn, PLATFORM)
    for corp in out:
        corp["pending_callbacks"] = int(pending.get(corp["corp_id"], 0))
    return out


def get_corp(conn: Connection, *, actor: Actor, corp_id: str) -> dict[str, Any]:
    actor.require(Permission.VIEW)
    row = conn.execute(select(wecom_corps).where(wecom_corps.c.corp_id == corp_id)).mappings()\
        .first()
    if row is None:
        raise NotFound(f"WeCom corp {corp_id!r} is not connected")
    return _public(dict(row))


def corp_secrets(conn: Connection, box: SecretBox, corp_id: str) -> CorpSecrets | None:
    row = conn.execute(select(wecom_corps).where(wecom_corps.c.corp_id == corp_id)).mappings()\
        .first()
    if row is None:
        return None
    return CorpSecrets(corp_id, int(row["agent_id"]), box.open(row["secret"]),
                       box.open(row["token"]), box.open(row["aes_key"]))


def chat_home(conn: Connection, chat_id: str) -> tuple[str, str] | None:
    row = conn.execute(select(wecom_chats.c.corp_id, wecom_chats.c.owner).where(
        wecom_chats.c.chat_id == chat_id)).first()
    return (str(row.corp_id), str(row.owner)) if row is not None else None


def set_status(conn: Connection, corp_id: str, **values: Any) -> None:
    current = conn.execute(select(wecom_corps.c.status).where(
        wecom_corps.c.corp_id == corp_id)).scalar()
    if current is None and not conn.execute(select(wecom_corps.c.id).where(
            wecom_corps.c.corp_id == corp_id)).first():
        return
    merged = {**dict(current or {}), **{k: _jsonable(v) for k, v in values.items()}}
    conn.execute(update(wecom_corps).where(wecom_corps.c.corp_id == corp_id)
                 .values(status=merged))


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# --- callbacks --------------------------------------------------------------------------------


def _secrets_or_refuse(conn: Connection, box: SecretBox, corp_id: str) -> CorpSecrets:
    found = corp_secrets(conn, box, corp_id)
    if found is None:
        raise NotFound(f"WeCom corp {corp_id!r} is not connected")
    return found


def _check_age(timestamp: str, now: datetime, max_age_seconds: float) -> None:
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise InvalidInput("timestamp: not a unix time")
    sent = int(timestamp)
    if abs(now.timestamp() - sent) > max_age_seconds:
        raise AccessDenied(f"timestamp {timestamp} is more than {int(max_age_seconds)} s away "
                           "from now: stale or replayed request")


def verify_url(conn: Connection, *, box: SecretBox, corp_id: str, msg_signature: str,
               timestamp: str, nonce: str, echostr: str, now: datetime,
               max_age_seconds: float) -> str:
    """WeCom's URL check: the plaintext of ``echostr`` when the signature is right."""
    crypto = callback_crypto(conn, box, corp_id)
    _check_age(timestamp, now, max_age_seconds)
    try:
        return crypto.verify_url(msg_signature, timestamp, nonce, echostr)
    except CallbackCryptoError as exc:
        raise AccessDenied(f"WeCom URL verification refused ({exc.code}): {exc}") from None


@dataclass(frozen=True, slots=True)
class Received:
    stored: bool  # False: a retry of a callback already stored
    callback_id: int | None


@dataclass(frozen=True, slots=True)
class OpenedCallback:
    """A callback whose signature, age and encryption checked out, ready to store."""

    corp_id: str
    xml: str


def open_callback(crypto: WecomCrypto, *, corp_id: str, body: bytes, msg_signature: str,
                  timestamp: str, nonce: str, now: datetime,
                  max_age_seconds: float) -> OpenedCallback:
    """Verify and decrypt one callback with the corp's keys (reads and writes nothing)."""
    _check_age(timestamp, now, max_age_seconds)
    try:
        return OpenedCallback(corp_id, crypto.decrypt_callback(body, msg_signature, timestamp,
                                                               nonce))
    except CallbackCryptoError as exc:
        if exc.code == -40002:
            raise InvalidInput(f"callback body refused: {exc}") from None
        raise AccessDenied(f"callback refused ({exc.code}): {exc}") from None


def callback_crypto(conn: Connection, box: SecretBox, corp_id: str) -> WecomCrypto:
    """The connected corp's callback keys, unsealed; NotFound for a corp not connected."""
    return _secrets_or_refuse(conn, box, corp_id).crypto


class CallbackKeys:
    """Each corp's callback keys, kept ``ttl`` seconds by the endpoint's process: reading and
    unsealing them took 0.25 ms (SQLite) to 1.2 ms (PostgreSQL) per callback, several times
    the verification and decryption themselves. A callback the kept keys refuse is tried
    again with freshly read ones, so a corp re-keyed with ``add-corp`` is honoured at once —
    but at most once per ``min_reload`` seconds per corp, and an unknown corp is remembered
    as unknown for ``ttl``: a flood of forged callbacks must not turn into a database read
    each."""

    def __init__(self, load: Callable[[str], WecomCrypto], *, ttl: float = 10.0,
                 min_reload: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        self._ttl = ttl
        self._min_reload = min_reload
        self._clock = clock
        self._kept: dict[str, tuple[float, WecomCrypto]] = {}
        self._loaded_at: dict[str, float] = {}
        self._unknown: dict[str, tuple[float, NotFound]] = {}

    def _fresh(self, corp_id: str) -> WecomCrypto:
        now = self._clock()
        unknown = self._unknown.get(corp_id)
        if unknown is not None and unknown[0] > now:
            raise unknown[1]
        self._loaded_at[corp_id] = now
        try:
            crypto = self._load(corp_id)
        except NotFound as exc:
            if len(self._unknown) > 10_000:  # random corp ids must not grow this forever
                self._unknown.clear()
            self._unknown[corp_id] = (now + self._ttl, exc)
            raise
        self._unknown.pop(corp_id, None)
        self._kept[corp_id] = (now + self._ttl, crypto)
        return crypto

    def open(self, *, corp_id: str, body: bytes, msg_signature: str, timestamp: str,
             nonce: str, now: datetime, max_age_seconds: float) -> OpenedCallback:
        def with_keys(crypto: WecomCrypto) -> OpenedCallback:
            return open_callback(crypto, corp_id=corp_id, body=body,
                                 msg_signature=msg_signature, timestamp=timestamp, nonce=nonce,
                                 now=now, max_age_seconds=max_age_seconds)

        kept = self._kept.get(corp_id)
        if kept is not None and kept[0] > self._clock():
            try:
                return with_keys(kept[1])
            except AccessDenied:
                recently = self._clock() - self._loaded_at.get(corp_id, float("-inf"))
                if recently < self._min_reload:
                    raise  # the keys were just read: a forgery, not a re-keyed corp
        return with_keys(self._fresh(corp_id))


def store_callbacks(conn: Connection, opened: list[OpenedCallback],
                    now: datetime) -> list[Received]:
    """Store opened callbacks in the caller's transaction — one commit for a batch of them
    (the web intake's group commit); a retry of a stored callback adds nothing."""
    out = []
    for item in opened:
        new_id = raw_inbox.store(conn, platform=PLATFORM, account=item.corp_id, body=item.xml,
                                 now=now)
        out.append(Received(stored=new_id is not None, callback_id=new_id))
    return out


@dataclass
class ProcessStats:
    processed: int = 0
    failed: int = 0
    events: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    reconciled: int = 0
    deferred: int = 0  # reconciles not tried after the corp's API failed transiently
    changes: RosterChanges = field(default_factory=RosterChanges)
    errors: list[str] = field(default_factory=list)


def process_callbacks(uow: UnitOfWork, *, adapter: WecomAdapter, config: IngestConfig,
                      limit: int = 100) -> ProcessStats:
    """Turn stored callbacks into domain events (rules run as for any platform), then read
    back every group they left unknown.

    A batch is one transaction with a savepoint per callback: one commit (and, on SQLite,
    one hold of the write lock) per batch instead of per callback, so the endpoint's inserts
    are not starved; a callback that fails is rolled back to its savepoint and marked failed
    with the reason, and a crash leaves the whole batch pending for the next run."""
    # sync builds on this module (the corps, their status): imported here, so the
    # modules import one way
    from qunyun.services.wecom_sync import reconcile_chat, sync_tags

    stats = ProcessStats()
    reconcile: dict[tuple[str, str], None] = {}
    tag_corps: set[str] = set()
    with uow.write() as conn:
        rows = raw_inbox.claim(conn, PLATFORM, limit)
        for row in rows:
            try:
                parsed = adapter.parse({"xml": row["body"], "digest": row["digest"]})
                with conn.begin_nested():
                    for event in parsed.events:
                        do_ingest_event(conn, event, config=config)
            except (ParseError, ServiceError) as exc:
                raw_inbox.finish(conn, row["id"], FAILED, str(exc))
                stats.failed += 1
                continue
            except Exception as exc:  # a bug must not hold the queue behind one callback
                log.exception("WeCom callback %s failed", row["id"])
                raw_inbox.finish(conn, row["id"], FAILED, f"{type(exc).__name__}: {exc}")
                stats.failed += 1
                continue
            raw_inbox.finish(conn, row["id"], PROCESSED)
            stats.processed += 1
            stats.events += len(parsed.events)
            for kind, n in parsed.skipped.items():
                stats.skipped[kind] = stats.skipped.get(kind, 0) + n
            for follow in parsed.follow_ups:
                if follow["kind"] == "reconcile_group":
                    reconcile[(row["account"], follow["chat"])] = None
                elif follow["kind"] == "sync_tags":
                    tag_corps.add(row["account"])
        for corp_id in {r["account"] for r in rows}:
            set_status(conn, corp_id, last_callback_at=utcnow())
    unreachable: set[str] = set()
    for corp_id, chat_id in reconcile:
        if corp_id in unreachable:  # its API is down or busy: the next sync reads these
            stats.deferred += 1
            continue
        try:
            changes = reconcile_chat(uow, adapter=adapter, corp_id=corp_id, chat_id=chat_id)
        except WecomApiError as exc:
            stats.errors.append(str(exc))
            if exc.transient:
                unreachable.add(corp_id)
            with uow.write() as conn:
                set_status(conn, corp_id, last_error=str(exc), last_error_at=utcnow())
            continue
        stats.reconciled += 1
        stats.changes.add(changes)
    for corp_id in sorted(tag_corps):
        try:
            sync_tags(uow, adapter=adapter, corp_id=corp_id)
        except WecomApiError as exc:
            stats.errors.append(str(exc))
    return stats


def list_callbacks(conn: Connection, *, actor: Actor, corp_id: str | None = None,
                   status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    out = []
    for item in raw_inbox.recent(conn, PLATFORM, account=corp_id, status=status, limit=limit):
        item["corp_id"] = item.pop("account")
        try:
            fields = wecom_parse.read_event(item.pop("body"))
        except ParseError:
            fields = {}
        item["event"] = ":".join(x for x in (fields.get("Event", ""),
                                             fields.get("ChangeType", ""),
                                             fields.get("UpdateDetail", "")) if x)
        out.append(item)
    return out


def corp_secrets_exist(conn: Connection, corp_id: str) -> bool:
    return conn.execute(select(wecom_corps.c.id).where(
        wecom_corps.c.corp_id == corp_id)).first() is not None
