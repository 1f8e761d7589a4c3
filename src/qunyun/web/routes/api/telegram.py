"""Telegram over the API: connected bots (add with a token, list, remove) and the chats each
bot is in with the rights it lacks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from qunyun.bootstrap import telegram_clients
from qunyun.domain.staff import Permission
from qunyun.services import telegram
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access

router = APIRouter(prefix="/api/v1", tags=["telegram"])


class BotCreate(BaseModel):
    token: str = Field(max_length=128)
    secret: str = Field("", max_length=256)
    webhook_url: str = Field("", max_length=500)


@router.get("/telegram/bots")
@access(Permission.VIEW)
def bots(actor: CurrentActor, conn: ReadConn) -> list[dict[str, Any]]:
    """Bots without their secrets: how updates arrive, chats, last update and error."""
    return telegram.list_bots(conn, actor=actor)


@router.post("/telegram/bots", status_code=201)
@access(Permission.MANAGE_USERS)
def add_bot(body: BotCreate, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    """Connect a bot: checked with getMe first (a bad token is a 422, nothing stored); with
    ``webhook_url`` the webhook is set, else the worker polls."""
    return telegram.do_add_bot(runtime.uow, actor=actor, box=runtime.box,
                               clients=telegram_clients(runtime), token=body.token,
                               secret=body.secret, webhook_url=body.webhook_url,
                               now=runtime.now())


@router.delete("/telegram/bots/{bot_id}", status_code=204)
@access(Permission.MANAGE_USERS)
def remove_bot(bot_id: str, actor: CurrentActor, runtime: RuntimeDep) -> None:
    telegram.do_remove_bot(runtime.uow, actor=actor, bot_id=bot_id)


class Webhook(BaseModel):
    url: str = Field(max_length=500)
    secret: str = Field("", max_length=256)


@router.put("/telegram/bots/{bot_id}/webhook")
@access(Permission.MANAGE_USERS)
def set_webhook(bot_id: str, body: Webhook, actor: CurrentActor,
                runtime: RuntimeDep) -> dict[str, Any]:
    """Receive the bot's updates by webhook at ``url`` (Telegram is asked first: a refusal
    is a 422 and nothing changes)."""
    return telegram.do_set_webhook(runtime.uow, actor=actor, box=runtime.box,
                                   clients=telegram_clients(runtime), bot_id=bot_id,
                                   webhook_url=body.url, secret=body.secret,
                                   now=runtime.now())


@router.delete("/telegram/bots/{bot_id}/webhook")
@access(Permission.MANAGE_USERS)
def delete_webhook(bot_id: str, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    """Stop the webhook: the worker polls the bot instead."""
    return telegram.do_set_webhook(runtime.uow, actor=actor, box=runtime.box,
                                   clients=telegram_clients(runtime), bot_id=bot_id,
                                   webhook_url="", now=runtime.now())


@router.get("/telegram/chats")
@access(Permission.VIEW)
def chats(actor: CurrentActor, conn: ReadConn, bot_id: str | None = None
          ) -> list[dict[str, Any]]:
    """Each chat a bot is in: its status there and the rights qunyun uses that it lacks."""
    return telegram.list_chats(conn, actor=actor, bot_id=bot_id)


@router.post("/telegram/sync")
@access(Permission.OPERATE)
def sync(actor: CurrentActor, runtime: RuntimeDep, bot_id: str | None = None
         ) -> dict[str, Any]:
    """Read each group's owner and admins (the group's staff: not moderated, not greeted)
    and the bot's rights from Telegram: ``{chats, admins, failed: {chat id: reason}}``."""
    result = telegram.do_sync(runtime.uow, actor=actor, box=runtime.box,
                              clients=telegram_clients(runtime), now=runtime.now(),
                              bot_id=bot_id)
    return {"chats": result.chats, "admins": result.admins, "failed": result.failed}
