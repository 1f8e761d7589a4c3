"""The fast intake for what platforms push to us: WeCom's callback POSTs and Telegram's
webhook updates go straight to their endpoints, ahead of the dashboard's session middleware
and its routes, are verified (and, for WeCom, decrypted), stored in the raw inbox by a group
commit, and answered; the worker processes them after."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.routing import Router as StarletteRouter
from starlette.types import ASGIApp, Receive, Scope, Send

from qunyun.adapters.platforms.wecom.crypto import WecomCrypto
from qunyun.bootstrap import Runtime
from qunyun.services import telegram, wecom_callbacks
from qunyun.services.errors import ServiceError
from qunyun.web.limits import BodyLimit

MAX_CALLBACK_BYTES = 64 * 1024  # WeCom's envelopes are a few KB
MAX_UPDATE_BYTES = 256 * 1024  # a Telegram update with a long message and its entities
T = TypeVar("T")


def callback_params(request: Request) -> tuple[str, str, str]:
    q = request.query_params
    return q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", "")


class GroupCommit(Generic[T]):
    """Stores verified items in batches: while one batch commits (in a thread), the items
    that arrive meanwhile queue for the next, so one commit — an fsync on PostgreSQL, a turn
    at the write lock on SQLite — serves all of them. Each request is answered only once its
    own row is committed. ``writer`` stores a batch in the given transaction."""

    def __init__(self, runtime: Runtime,
                 writer: Callable[[Connection, list[T], datetime], object],
                 max_batch: int = 500) -> None:
        self.runtime = runtime
        self.writer = writer
        self.max_batch = max_batch
        self.pending: list[tuple[T, asyncio.Future[None]]] = []
        self.drain: asyncio.Task[None] | None = None

    async def store(self, opened: T) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self.pending.append((opened, future))
        if self.drain is None or self.drain.done():
            self.drain = loop.create_task(self._drain())
        await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self.pending:
            batch = self.pending[:self.max_batch]
            del self.pending[:self.max_batch]
            try:
                await loop.run_in_executor(None, self._write, [o for o, _ in batch])
            except Exception as exc:  # every request of the batch answers 500; WeCom retries
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    def _write(self, opened: list[T]) -> None:
        with self.runtime.uow.write() as conn:
            self.writer(conn, opened, self.runtime.now())


async def callback_receive(request: Request) -> Response:
    """Verify and decrypt, store (group commit), then answer ``success``; the worker
    processes the stored callback after."""
    runtime: Runtime = request.scope["qunyun.runtime"]
    body = await request.body()
    sig, ts, nonce = callback_params(request)
    keys: wecom_callbacks.CallbackKeys = request.scope["qunyun.keys"]
    try:
        opened = keys.open(corp_id=request.path_params["corp_id"], body=body,
                           msg_signature=sig, timestamp=ts, nonce=nonce, now=runtime.now(),
                           max_age_seconds=runtime.settings.wecom_callback_max_age_seconds)
    except ServiceError as exc:
        return PlainTextResponse(str(exc), status_code=exc.status_code)
    await request.scope["qunyun.commits"].store(opened)
    return PlainTextResponse("success")


def _store_updates(conn: Connection, items: list[tuple[str, str]], now: datetime) -> None:
    for bot_id, body in items:
        telegram.store_update(conn, bot_id=bot_id, body=body, now=now)


async def telegram_receive(request: Request) -> Response:
    """Check the secret header (wrong or missing: 403, nothing stored) and that the body is
    an update, store it (group commit) and answer 200 at once."""
    bot_id = request.path_params["bot_id"]
    header = request.headers.get("x-telegram-bot-api-secret-token", "")
    secrets: telegram.WebhookSecrets = request.scope["qunyun.bot_secrets"]
    verdict = (True if secrets.quick(bot_id, header)
               else await run_in_threadpool(secrets.check, bot_id, header))
    if verdict is None:
        return PlainTextResponse("no such bot", status_code=404)
    if not verdict:
        return PlainTextResponse("wrong secret token", status_code=403)
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        update = json.loads(body)
    except ValueError:
        return PlainTextResponse("the body is not JSON", status_code=400)
    if (not isinstance(update, dict) or isinstance(update.get("update_id"), bool)
            or not isinstance(update.get("update_id"), int)):
        return PlainTextResponse("the body is not a Telegram update", status_code=400)
    await request.scope["qunyun.updates"].store((bot_id, body))
    return PlainTextResponse("ok")


def _bot_secrets(runtime: Runtime, bot_id: str) -> telegram.BotSecrets | None:
    if not bot_id.isdigit():
        return None
    with runtime.uow.read() as conn:
        return telegram.bot_secrets(conn, runtime.box, bot_id)


class CallbackFastPath:
    """WeCom's callback POSTs go straight to their endpoint, ahead of the dashboard's
    session middleware and its ~200 routes: at a thousand callbacks a second, matching those
    cost more than verifying, decrypting and storing the callback itself."""

    PREFIX = "/callbacks/wecom/"
    TELEGRAM = "/callbacks/telegram/"

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self.commits: GroupCommit[wecom_callbacks.OpenedCallback] = GroupCommit(
            runtime, wecom_callbacks.store_callbacks)
        self.updates: GroupCommit[tuple[str, str]] = GroupCommit(runtime, _store_updates)
        self.bot_secrets = telegram.WebhookSecrets(lambda bot: _bot_secrets(runtime, bot))
        self.telegram = BodyLimit(StarletteRouter(routes=[Route(
            self.TELEGRAM + "{bot_id}", telegram_receive, methods=["POST"])]),
            MAX_UPDATE_BYTES)
        self.keys = wecom_callbacks.CallbackKeys(self._load_keys)
        self.endpoint = BodyLimit(StarletteRouter(routes=[Route(
            self.PREFIX + "{corp_id}", callback_receive, methods=["POST"])]),
            MAX_CALLBACK_BYTES)

    def _load_keys(self, corp_id: str) -> WecomCrypto:
        with self.runtime.uow.read() as conn:
            return wecom_callbacks.callback_crypto(conn, self.runtime.box, corp_id)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] == "POST"
                and scope["path"].startswith(self.PREFIX)):
            corp = scope["path"][len(self.PREFIX):]
            if not corp or "/" in corp:  # the router's own 404 needs the app around it
                await PlainTextResponse("no such callback", status_code=404)(
                    scope, receive, send)
                return
            scope["qunyun.runtime"] = self.runtime
            scope["qunyun.commits"] = self.commits
            scope["qunyun.keys"] = self.keys
            await self.endpoint(scope, receive, send)
            return
        if (scope["type"] == "http" and scope["method"] == "POST"
                and scope["path"].startswith(self.TELEGRAM)):
            bot = scope["path"][len(self.TELEGRAM):]
            if not bot or "/" in bot:
                await PlainTextResponse("no such bot", status_code=404)(scope, receive, send)
                return
            scope["qunyun.runtime"] = self.runtime
            scope["qunyun.updates"] = self.updates
            scope["qunyun.bot_secrets"] = self.bot_secrets
            await self.telegram(scope, receive, send)
            return
        await self.app(scope, receive, send)
