"""The Telegram page: bots, how their updates arrive, the chats they are in with the rights
they lack, and connecting or removing a bot (webhook POSTs take the fast intake)."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from qunyun.bootstrap import telegram_clients
from qunyun.domain.staff import Permission
from qunyun.services import join_codes, raw_inbox, telegram
from qunyun.web.deps import CurrentActor, ReadConn, RuntimeDep, access, render

router = APIRouter(include_in_schema=False)


@router.get("/telegram")
@access(Permission.VIEW)
def telegram_page(request: Request, actor: CurrentActor, conn: ReadConn,
                  runtime: RuntimeDep, synced: int | None = None, admins: int = 0,
                  failed: int = 0) -> Response:
    return render(request, "telegram.html", {
        "synced": synced, "synced_admins": admins, "sync_failed": failed,
        "bots": telegram.list_bots(conn, actor=actor),
        "chats": telegram.list_chats(conn, actor=actor),
        "pending": raw_inbox.pending_by_account(conn, telegram.PLATFORM),
        "public_url": runtime.settings.public_url, "rights": telegram.RIGHTS,
        "links": join_codes.list_join_codes(conn, actor=actor, platform=telegram.PLATFORM)})


@router.post("/telegram/links")
@access(Permission.OPERATE)
def telegram_link(actor: CurrentActor, runtime: RuntimeDep, bot_id: str = Form(...),
                  chat_id: str = Form(...), channel: str = Form(...),
                  capacity: int = Form(500)) -> Response:
    """A named invite link for a channel (a poster, a partner): the joins through it are
    credited to that channel."""
    join_codes.do_create_join_code(runtime.uow, actor=actor,
                                   adapter=runtime.adapter(telegram.PLATFORM), account=bot_id,
                                   channel=channel, chats=[chat_id], capacity=capacity)
    return RedirectResponse("/telegram#telegram-links", status_code=303)


@router.post("/telegram/sync")
@access(Permission.OPERATE)
def telegram_sync(actor: CurrentActor, runtime: RuntimeDep) -> Response:
    """Read every group's owner and admins and the bot's rights from Telegram."""
    result = telegram.do_sync(runtime.uow, actor=actor, box=runtime.box,
                              clients=telegram_clients(runtime), now=runtime.now())
    return RedirectResponse(f"/telegram?synced={result.chats}&admins={result.admins}"
                            f"&failed={len(result.failed)}#telegram-chats", status_code=303)


@router.post("/telegram/bots")
@access(Permission.MANAGE_USERS)
def telegram_add(actor: CurrentActor, runtime: RuntimeDep, token: str = Form(...),
                 webhook_url: str = Form("")) -> Response:
    telegram.do_add_bot(runtime.uow, actor=actor, box=runtime.box,
                        clients=telegram_clients(runtime), token=token,
                        webhook_url=webhook_url, now=runtime.now())
    return RedirectResponse("/telegram", status_code=303)


@router.post("/telegram/bots/{bot_id}/webhook")
@access(Permission.MANAGE_USERS)
def telegram_webhook(bot_id: str, actor: CurrentActor, runtime: RuntimeDep,
                     webhook_url: str = Form("", max_length=500)) -> Response:
    """Set the webhook to this address, or (empty) poll the bot instead."""
    telegram.do_set_webhook(runtime.uow, actor=actor, box=runtime.box,
                            clients=telegram_clients(runtime), bot_id=bot_id,
                            webhook_url=webhook_url, now=runtime.now())
    return RedirectResponse("/telegram", status_code=303)


@router.post("/telegram/bots/{bot_id}/remove")
@access(Permission.MANAGE_USERS)
def telegram_remove(bot_id: str, actor: CurrentActor, runtime: RuntimeDep) -> Response:
    telegram.do_remove_bot(runtime.uow, actor=actor, bot_id=bot_id)
    return RedirectResponse("/telegram", status_code=303)
