"""The Telegram connector: the team's bots (token and webhook secret sealed at rest), the
chats each bot is in with its rights, updates received by webhook or long polling into the
raw inbox, and their processing into domain events like any platform's.

API calls are made outside database transactions; a bad token is refused before anything is
stored. Polling stores the updates and the next offset in one transaction, so a restart
neither loses nor repeats an update; the webhook endpoint only checks the secret header and
stores the body (services/raw_inbox.py), and the worker processes both alike.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from qunyun.adapters.platforms.base import ParseError, ParseResult
from qunyun.adapters.platforms.telegram import parse as telegram_parse
from qunyun.adapters.platforms.telegram.adapter import TelegramAdapter
from qunyun.adapters.platforms.telegram.client import TelegramApiError, TelegramClient
from qunyun.adapters.secretbox import SecretBox
from qunyun.adapters.storage.sql import insert_ignore, upsert_many
from qunyun.adapters.storage.tables import telegram_bots, telegram_chats, telegram_private_chats
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.domain.events import ChatRef
from qunyun.domain.staff import Permission
from qunyun.services import audit, raw_inbox
from qunyun.services import groups as groups_service
from qunyun.services.errors import InvalidInput, NotFound, ServiceError
from qunyun.services.ingest import NO_RULES, IngestBatch, IngestConfig, do_ingest_event
from qunyun.services.users import SYSTEM, Actor

log = logging.getLogger(__name__)
PLATFORM = telegram_parse.PLATFORM
TOKEN = re.compile(r"^(\d{3,20}):[A-Za-z0-9_-]{30,64}$")
SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
MODES = ("polling", "webhook")
# rights qunyun uses, as getChatMember / my_chat_member name them
RIGHTS = ("can_delete_messages", "can_restrict_members", "can_invite_users",
          "can_pin_messages", "can_change_info")

ClientFactory = Callable[[str], TelegramClient]  # token → client


def callback_path(bot_id: str) -> str:
    return f"/callbacks/telegram/{bot_id}"


@dataclass(frozen=True, slots=True)
class BotSecrets:
    bot_id: str
    token: str
    secret: str


# --- bots --------------------------------------------------------------------------------


def do_add_bot(uow: UnitOfWork, *, actor: Actor, box: SecretBox, clients: ClientFactory,
               token: str, secret: str = "", webhook_url: str = "",
               now: datetime) -> dict[str, Any]:
    """Connect a bot (or replace its token): ``getMe`` first, so a bad token is refused with
    Telegram's words and nothing is stored; with ``webhook_url`` (the server's public
    address) the webhook is set, else the bot is polled."""
    actor.require(Permission.MANAGE_USERS)
    token = token.strip()
    if not TOKEN.match(token):
        raise InvalidInput("token: as BotFather gives it, digits:letters (123456:ABC-…)")
    secret = secret.strip() or secrets.token_urlsafe(32)
    if not SECRET.match(secret):
        raise InvalidInput("secret: 1–256 letters, digits, _ or -")
    webhook_url = webhook_url.strip().rstrip("/")
    if webhook_url and not webhook_url.startswith("https://"):
        raise InvalidInput("webhook URL: Telegram calls https:// addresses only")
    client = clients(token)
    try:
        me = client.get_me()
        if not me.get("is_bot"):
            raise InvalidInput("the token is not a bot's")
        bot_id = str(me["id"])
        if webhook_url:
            client.set_webhook(webhook_url + callback_path(bot_id), secret)
        else:
            client.delete_webhook()  # polling and a webhook cannot run at once
    except TelegramApiError as exc:
        raise InvalidInput("Telegram refused the token: {reason}",
                           reason=exc.description or str(exc.code)) from None
    finally:
        client.close()
    values = {"username": str(me.get("username") or "")[:64],
              "name": str(me.get("first_name") or "")[:128], "token": box.seal(token),
              "secret": box.seal(secret), "mode": "webhook" if webhook_url else "polling",
              "webhook_url": webhook_url, "updated_at": now}
    with uow.write() as conn:
        inserted = insert_ignore(conn, telegram_bots, {
            "bot_id": bot_id, "poll_offset": 0, "status": {}, "created_at": now, **values},
            ["bot_id"])
        if inserted is None:
            conn.execute(update(telegram_bots).where(telegram_bots.c.bot_id == bot_id)
                         .values(**values))
        audit.record(conn, actor=actor.label, action="telegram.bot_add", object_type="bot",
                     object_id=bot_id, detail={"username": values["username"],
                                               "mode": values["mode"]})
    return {"bot_id": bot_id, "username": values["username"], "name": values["name"],
            "mode": values["mode"], "webhook": webhook_url + callback_path(bot_id)
            if webhook_url else ""}


def do_set_webhook(uow: UnitOfWork, *, actor: Actor, box: SecretBox, clients: ClientFactory,
                   bot_id: str, webhook_url: str, secret: str = "",
                   now: datetime) -> dict[str, Any]:
    """Receive a connected bot's updates by webhook at ``webhook_url`` (the server's public
    https address), or, when it is empty, by polling (the webhook is deleted: Telegram does
    not allow both). Telegram is asked first; if it refuses, nothing changes here."""
    actor.require(Permission.MANAGE_USERS)
    webhook_url = webhook_url.strip().rstrip("/")
    if webhook_url and not webhook_url.startswith("https://"):
        raise InvalidInput("webhook URL: Telegram calls https:// addresses only")
    secret = secret.strip()
    if secret and not SECRET.match(secret):
        raise InvalidInput("secret: 1–256 letters, digits, _ or -")
    with uow.read() as conn:
        found = bot_secrets(conn, box, bot_id)
    if found is None:
        raise NotFound("Telegram bot {bot_id} not found", bot_id=bot_id)
    secret = secret or found.secret
    client = clients(found.token)
    try:
        if webhook_url:
            client.set_webhook(webhook_url + callback_path(bot_id), secret)
        else:
            client.delete_webhook()
    except TelegramApiError as exc:
        raise InvalidInput("Telegram refused: {reason}",
                           reason=exc.description or str(exc.code)) from None
    finally:
        client.close()
    mode = "webhook" if webhook_url else "polling"
    with uow.write() as conn:
        conn.execute(update(telegram_bots).where(telegram_bots.c.bot_id == bot_id).values(
            mode=mode, webhook_url=webhook_url, secret=box.seal(secret), updated_at=now))
        audit.record(conn, actor=actor.label, action="telegram.webhook", object_type="bot",
                     object_id=bot_id, detail={"mode": mode, "url": webhook_url})
    return {"bot_id": bot_id, "mode": mode,
            "webhook": webhook_url + callback_path(bot_id) if webhook_url else ""}


def list_bots(conn: Connection, *, actor: Actor) -> list[dict[str, Any]]:
    """Bots without their secrets, with how many chats each is in and is admin of."""
    actor.require(Permission.VIEW)
    chats: dict[str, tuple[int, int]] = {}
    for r in conn.execute(select(telegram_chats.c.bot_id, telegram_chats.c.status,
                                 func.count()).group_by(telegram_chats.c.bot_id,
                                                        telegram_chats.c.status)):
        total, admin = chats.get(r[0], (0, 0))
        active = r[1] not in ("left", "kicked")
        chats[r[0]] = (total + (r[2] if active else 0),
                       admin + (r[2] if r[1] in ("administrator", "creator") else 0))
    return [{"bot_id": r.bot_id, "username": r.username, "name": r.name, "mode": r.mode,
             "webhook_url": r.webhook_url, "poll_offset": int(r.poll_offset),
             "status": dict(r.status or {}), "chats": chats.get(r.bot_id, (0, 0))[0],
             "admin_chats": chats.get(r.bot_id, (0, 0))[1], "created_at": r.created_at}
            for r in conn.execute(select(telegram_bots).order_by(telegram_bots.c.id))]


def list_chats(conn: Connection, *, actor: Actor, bot_id: str | None = None
               ) -> list[dict[str, Any]]:
    """Each chat a bot is in, its status and which of the rights qunyun uses it lacks."""
    actor.require(Permission.VIEW)
    stmt = select(telegram_chats).order_by(telegram_chats.c.title)
    if bot_id:
        stmt = stmt.where(telegram_chats.c.bot_id == bot_id)
    out = []
    for r in conn.execute(stmt).mappings():
        rights = dict(r["rights"] or {})
        out.append({**dict(r), "missing": [k for k in RIGHTS if not rights.get(k)]
                    if r["status"] == "administrator" else
                    ([] if r["status"] == "creator" else list(RIGHTS))})
    return out


def do_remove_bot(uow: UnitOfWork, *, actor: Actor, bot_id: str) -> None:
    actor.require(Permission.MANAGE_USERS)
    with uow.write() as conn:
        gone = conn.execute(delete(telegram_bots).where(telegram_bots.c.bot_id == bot_id))
        if not gone.rowcount:
            raise NotFound("Telegram bot {bot_id} not found", bot_id=bot_id)
        conn.execute(delete(telegram_chats).where(telegram_chats.c.bot_id == bot_id))
        audit.record(conn, actor=actor.label, action="telegram.bot_remove",
                     object_type="bot", object_id=bot_id)


def bot_secrets(conn: Connection, box: SecretBox, bot_id: str) -> BotSecrets | None:
    row = conn.execute(select(telegram_bots.c.token, telegram_bots.c.secret)
                       .where(telegram_bots.c.bot_id == bot_id)).first()
    if row is None:
        return None
    return BotSecrets(bot_id, box.open(row.token), box.open(row.secret))


def webhook_secret_ok(found: BotSecrets | None, header: str) -> bool:
    """The header Telegram sends with each webhook call matches the bot's secret."""
    return found is not None and hmac.compare_digest(found.secret.encode(), header.encode())


class WebhookSecrets:
    """Each bot's webhook secret, kept ``ttl`` seconds by the endpoint's process: a read and
    an unseal per update cost more than storing it. A secret the kept one refuses is read
    again (a bot re-added with a new secret is honoured at once), at most once per
    ``min_reload`` seconds per bot; an unknown bot is remembered as unknown for ``ttl``, so
    a flood of forged updates does not become a database read each."""

    def __init__(self, load: Callable[[str], BotSecrets | None], *, ttl: float = 10.0,
                 min_reload: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        self._ttl = ttl
        self._min_reload = min_reload
        self._clock = clock
        self._kept: dict[str, tuple[float, BotSecrets | None]] = {}

    def _read(self, bot_id: str, now: float) -> BotSecrets | None:
        if len(self._kept) > 10_000:  # random bot ids must not grow this forever
            self._kept.clear()
        found = self._load(bot_id)
        self._kept[bot_id] = (now, found)
        return found

    def quick(self, bot_id: str, header: str) -> bool:
        """The header matches a kept, unexpired secret (no I/O: the endpoint asks this in
        its event loop and goes to a thread only to read)."""
        kept = self._kept.get(bot_id)
        return (kept is not None and kept[1] is not None
                and self._clock() - kept[0] <= self._ttl and webhook_secret_ok(kept[1], header))

    def get(self, bot_id: str) -> BotSecrets | None:
        now = self._clock()
        kept = self._kept.get(bot_id)
        if kept is None or now - kept[0] > self._ttl:
            return self._read(bot_id, now)
        return kept[1]

    def check(self, bot_id: str, header: str) -> bool | None:
        """None: no such bot; else whether the header is the bot's secret."""
        found = self.get(bot_id)
        if found is not None and webhook_secret_ok(found, header):
            return True
        kept = self._kept.get(bot_id)
        if kept is not None and self._clock() - kept[0] >= self._min_reload:
            found = self._read(bot_id, self._clock())
        if found is None:
            return None
        return webhook_secret_ok(found, header)


def bot_for_chat(conn: Connection, chat_id: str) -> str | None:
    """The bot that speaks in a chat: an administrator first, else any member bot."""
    rows = conn.execute(select(telegram_chats.c.bot_id, telegram_chats.c.status)
                        .where(telegram_chats.c.chat_id == chat_id)).all()
    ranked = sorted((r for r in rows if r.status not in ("left", "kicked")),
                    key=lambda r: r.status not in ("administrator", "creator"))
    return str(ranked[0].bot_id) if ranked else None


def note_private(conn: Connection, *, bot_id: str, user_id: str, status: str,
                 at: datetime) -> None:
    """A person wrote to the bot in private (``open``: it may write back) or blocked it."""
    upsert_many(conn, telegram_private_chats, [{"bot_id": bot_id, "user_id": user_id,
                                                "status": status, "last_at": at}],
                ["bot_id", "user_id"], ["status", "last_at"])


def bot_for_user(conn: Connection, user_id: str, *, prefer: str | None = None) -> str | None:
    """A team bot that may write to the person privately: ``prefer`` (the group's bot) when
    the person wrote to it, else the one they wrote to last; None when they wrote to none."""
    rows = conn.execute(select(telegram_private_chats.c.bot_id).where(
        telegram_private_chats.c.user_id == user_id, telegram_private_chats.c.status == "open")
        .order_by(telegram_private_chats.c.last_at.desc())).scalars().all()
    bots = [str(b) for b in rows]
    return prefer if prefer in bots else (bots[0] if bots else None)


def set_status(conn: Connection, bot_id: str, **values: Any) -> None:
    row = conn.execute(select(telegram_bots.c.status)
                       .where(telegram_bots.c.bot_id == bot_id)).first()
    if row is None:
        return
    status = {**dict(row.status or {}),
              **{k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}}
    conn.execute(update(telegram_bots).where(telegram_bots.c.bot_id == bot_id)
                 .values(status=status))


# --- sync --------------------------------------------------------------------------------


@dataclass
class SyncResult:
    chats: int = 0
    admins: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # chat id → what Telegram said


def do_sync(uow: UnitOfWork, *, actor: Actor, box: SecretBox, clients: ClientFactory,
            now: datetime, bot_id: str | None = None,
            chat_ids: Iterable[str] | None = None) -> SyncResult:
    """Read each group's administrators from Telegram (``getChatAdministrators``): the owner
    and admins become the group's staff — their messages are not moderated, they are not
    greeted — and the bot's own entry gives its rights there. Telegram reports a promotion
    only to an admin bot and never the admins a group had before the bot came, hence this
    read (run for a group as soon as the bot is added). API calls are made outside
    transactions; a group that fails is reported with Telegram's words, the rest go on."""
    actor.require(Permission.OPERATE)
    with uow.read() as conn:
        stmt = select(telegram_chats.c.bot_id, telegram_chats.c.chat_id,
                      telegram_chats.c.title).where(
            telegram_chats.c.status.in_(("administrator", "creator", "member")))
        if bot_id:
            stmt = stmt.where(telegram_chats.c.bot_id == bot_id)
        if chat_ids is not None:
            stmt = stmt.where(telegram_chats.c.chat_id.in_(list(chat_ids)))
        chats = list(conn.execute(stmt.order_by(telegram_chats.c.id)))
        tokens = {b: found.token for b in {c.bot_id for c in chats}
                  if (found := bot_secrets(conn, box, b)) is not None}
    out = SyncResult()
    for chat in chats:
        if chat.bot_id not in tokens:
            continue
        client = clients(tokens[chat.bot_id])
        try:
            administrators = client.admins(chat.chat_id)
        except TelegramApiError as exc:
            out.failed[chat.chat_id] = str(exc)
            continue
        finally:
            client.close()
        mine = next((a for a in administrators
                     if str((a.get("user") or {}).get("id")) == chat.bot_id), None)
        try:
            event = telegram_parse.admins_event(
                ChatRef(external_id=chat.chat_id, name=chat.title), administrators, now)
        except ParseError as exc:
            out.failed[chat.chat_id] = str(exc)
            continue
        with uow.write() as conn:
            do_ingest_event(conn, event, config=NO_RULES, received_at=now)
            values: dict[str, Any] = {"updated_at": now}
            if mine is not None:
                values.update(status=str(mine.get("status") or "administrator")[:16],
                              rights={k: bool(mine.get(k)) for k in RIGHTS})
            conn.execute(update(telegram_chats).where(
                telegram_chats.c.bot_id == chat.bot_id,
                telegram_chats.c.chat_id == chat.chat_id).values(**values))
            audit.record(conn, actor=actor.label, action="telegram.sync", object_type="chat",
                         object_id=chat.chat_id,
                         detail={"bot": chat.bot_id, "admins": len(event.admins or ()),
                                 "owner": bool(event.owner)})
        out.chats += 1
        out.admins += len(event.admins or ()) + (event.owner is not None)
    return out


# --- receiving ---------------------------------------------------------------------------


def store_update(conn: Connection, *, bot_id: str, body: str, now: datetime) -> int | None:
    """A webhook body, as received (its digest makes Telegram's retry one row)."""
    return raw_inbox.store(conn, platform=PLATFORM, account=bot_id, body=body, now=now)


def poll_once(uow: UnitOfWork, *, box: SecretBox, clients: ClientFactory, bot_id: str,
              now: datetime, timeout: int = 0) -> int:
    """One ``getUpdates`` round for a polled bot: the updates and the next offset are stored
    in one transaction (a crash before it repeats the round; after it, nothing is asked
    twice). Returns how many updates were stored."""
    with uow.read() as conn:
        row = conn.execute(select(telegram_bots.c.poll_offset, telegram_bots.c.mode)
                           .where(telegram_bots.c.bot_id == bot_id)).first()
        found = bot_secrets(conn, box, bot_id)
    if row is None or found is None:
        raise NotFound("Telegram bot {bot_id} not found", bot_id=bot_id)
    client = clients(found.token)
    try:
        updates = client.get_updates(int(row.poll_offset), timeout=timeout)
    except TelegramApiError as exc:
        with uow.write() as conn:
            set_status(conn, bot_id, last_error=str(exc), last_error_at=now)
        raise
    finally:
        client.close()
    if not updates:
        return 0
    with uow.write() as conn:
        for item in updates:
            store_update(conn, bot_id=bot_id, body=json.dumps(item, ensure_ascii=False,
                                                              sort_keys=True), now=now)
        last = max(int(u.get("update_id", 0)) for u in updates)
        conn.execute(update(telegram_bots).where(telegram_bots.c.bot_id == bot_id,
                                                 telegram_bots.c.poll_offset <= last)
                     .values(poll_offset=last + 1))
        set_status(conn, bot_id, last_update_at=now)
    return len(updates)


def poll_all(uow: UnitOfWork, *, box: SecretBox, clients: ClientFactory, now: datetime,
             timeout: int = 0) -> tuple[int, dict[str, str]]:
    """One round for every bot without a webhook: (updates stored, bot id → what failed).
    One bot's failure (recorded on it) does not stop the others."""
    with uow.read() as conn:
        polled = list(conn.execute(select(telegram_bots.c.bot_id)
                                   .where(telegram_bots.c.mode == "polling")
                                   .order_by(telegram_bots.c.id)).scalars())
    stored, failed = 0, {}
    for bot_id in polled:
        try:
            stored += poll_once(uow, box=box, clients=clients, bot_id=str(bot_id), now=now,
                                timeout=timeout)
        except (TelegramApiError, ServiceError) as exc:
            failed[str(bot_id)] = str(exc)
    return stored, failed


@dataclass
class ProcessStats:
    processed: int = 0
    failed: int = 0
    deferred: int = 0  # left for the next round: the database was busy
    events: int = 0
    added_to: set[str] = field(default_factory=set)  # chats the bot was added to: to sync
    skipped: dict[str, int] = field(default_factory=dict)


def process_updates(uow: UnitOfWork, *, adapter: TelegramAdapter, config: IngestConfig,
                    now: datetime, limit: int = 200) -> ProcessStats:
    """Stored updates → domain events through the adapter, as one batch (a bad one is
    marked failed with the reason; the rest go on: ``raw_inbox.handle_claimed``); the bot's
    status in each chat is kept from ``my_chat_member``."""

    def handle(row: dict[str, Any], batch: IngestBatch) -> ParseResult:
        update_ = json.loads(row["body"])
        parsed = adapter.parse({"bot": row["account"], "update": update_})
        for event in parsed.events:
            do_ingest_event(conn, event, config=config, batch=batch)
        for follow in parsed.follow_ups:
            apply_follow_up(conn, row["account"], follow, update_, now)
            batch.after_change()
        return parsed

    stats = ProcessStats()
    with uow.write() as conn:
        handled = raw_inbox.handle_claimed(
            conn, raw_inbox.claim(conn, PLATFORM, limit), handle, new_batch=IngestBatch,
            expected=(ParseError, ServiceError, ValueError), what="Telegram update")
    stats.failed, stats.deferred = handled.failed, handled.deferred
    for _row, parsed in handled.done:
        stats.added_to |= {f["chat"] for f in parsed.follow_ups
                           if f["kind"] == "bot_status" and f["status"] in telegram_parse.IN}
        stats.processed += 1
        stats.events += len(parsed.events)
        for kind, n in parsed.skipped.items():
            stats.skipped[kind] = stats.skipped.get(kind, 0) + n
    return stats


def process_and_sync(uow: UnitOfWork, *, adapter: TelegramAdapter, config: IngestConfig,
                     box: SecretBox, clients: ClientFactory, now: datetime) -> ProcessStats:
    """What the worker and ``telegram poll`` do: process stored updates, then read the
    admins and rights of the groups the bot was just added to (Telegram never reports the
    admins a group had before; the API calls come after the batch's transaction)."""
    stats = process_updates(uow, adapter=adapter, config=config, now=now)
    if stats.added_to:
        synced = do_sync(uow, actor=SYSTEM, box=box, clients=clients, now=now,
                         chat_ids=stats.added_to)
        for chat_id, error in synced.failed.items():
            log.warning("Telegram group %s could not be synced: %s", chat_id, error)
    return stats


def apply_follow_up(conn: Connection, bot_id: str, follow: Mapping[str, str],
                    update_: Mapping[str, Any], now: datetime) -> None:
    """What an update asks of the connector besides its events: a chat's new id, the
    bot's status and rights in a chat, a person's private chat with the bot."""
    if follow["kind"] == "migrate":  # a group became a supergroup: a new id, the same group
        groups_service.move_group(conn, platform=PLATFORM, old=follow["chat"],
                                  new=follow["to"], at=now)
        conn.execute(update(telegram_chats).where(telegram_chats.c.chat_id == follow["chat"])
                     .values(chat_id=follow["to"], updated_at=now))
        return
    if follow["kind"] == "private":  # the person opened (or blocked) a private chat
        note_private(conn, bot_id=bot_id, user_id=follow["user"], status=follow["status"],
                     at=now)
        return
    if follow["kind"] == "bot_status":
        member = (update_.get("my_chat_member") or {}).get("new_chat_member") or {}
        rights = {k: bool(member.get(k)) for k in RIGHTS}
        values = {"title": follow.get("title", "")[:255], "status": follow["status"][:16],
                  "rights": rights, "updated_at": now}
        inserted = insert_ignore(conn, telegram_chats, {
            "bot_id": bot_id, "chat_id": follow["chat"], **values}, ["bot_id", "chat_id"])
        if inserted is None:
            conn.execute(update(telegram_chats).where(
                telegram_chats.c.bot_id == bot_id,
                telegram_chats.c.chat_id == follow["chat"]).values(**values))
        audit.record(conn, actor="system", action="telegram.bot_status", object_type="chat",
                     object_id=follow["chat"], detail={"bot": bot_id,
                                                       "status": follow["status"]})
