"""``qunyun telegram …``: connect bots, see the chats they are in and the rights they lack,
receive updates by webhook or long polling, and process them."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer
from rich.table import Table

from qunyun.adapters.platforms.telegram.adapter import TelegramAdapter
from qunyun.bootstrap import Runtime, telegram_clients
from qunyun.cli.common import AsOpt, JsonOpt, acting, console, done, emit_json, fail, runtime, say
from qunyun.services import telegram

telegram_app = typer.Typer(help="Telegram groups run by an admin bot: bots, chats, updates",
                           no_args_is_help=True)


def _adapter(rt: Runtime) -> TelegramAdapter:
    adapter = rt.adapters.get(TelegramAdapter.name)
    if not isinstance(adapter, TelegramAdapter):
        fail(say("the Telegram adapter is not configured in this runtime"))
    return adapter


@telegram_app.command("add-bot")
def add_bot(token: Annotated[str, typer.Option(
                envvar="QUNYUN_TELEGRAM_TOKEN",
                help="The token BotFather gave; '-' reads it from stdin (a value on the "
                     "command line is visible in `ps`)")] = "",
            secret: Annotated[str, typer.Option(
                help="Webhook secret token (made for you when empty)")] = "",
            webhook_url: Annotated[str, typer.Option(
                "--webhook-url", help="This server's public https address: set the "
                                      "webhook; without it the bot is polled")] = "",
            as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Connect a bot (checked with getMe first; a bad token stores nothing)."""
    if token == "-":
        token = sys.stdin.readline().strip()
    if not token:
        fail(say("--token: give it on stdin ('-') or in QUNYUN_TELEGRAM_TOKEN"))
    with runtime() as rt:
        bot = telegram.do_add_bot(rt.uow, actor=acting(rt, as_user), box=rt.box,
                                  clients=telegram_clients(rt), token=token, secret=secret,
                                  webhook_url=webhook_url, now=rt.now())
    done(as_json, bot, say("bot @{username} ({bot_id}) connected; updates by {mode}",
                           username=bot["username"], bot_id=bot["bot_id"],
                           mode=say(f"telegram.mode.{bot['mode']}")))


@telegram_app.command("set-webhook")
def set_webhook(bot_id: str,
                url: Annotated[str, typer.Option(
                    "--url", help="This server's public https address")],
                secret: Annotated[str, typer.Option(
                    help="A new webhook secret (the stored one is kept when empty)")] = "",
                as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Receive the bot's updates by webhook (Telegram is asked first)."""
    with runtime() as rt:
        out = telegram.do_set_webhook(rt.uow, actor=acting(rt, as_user), box=rt.box,
                                      clients=telegram_clients(rt), bot_id=bot_id,
                                      webhook_url=url, secret=secret, now=rt.now())
    done(as_json, out, say("bot {bot_id}: updates by {mode}", bot_id=bot_id,
                           mode=say(f"telegram.mode.{out['mode']}")))


@telegram_app.command("delete-webhook")
def delete_webhook(bot_id: str, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Stop the webhook: the worker polls the bot instead."""
    with runtime() as rt:
        out = telegram.do_set_webhook(rt.uow, actor=acting(rt, as_user), box=rt.box,
                                      clients=telegram_clients(rt), bot_id=bot_id,
                                      webhook_url="", now=rt.now())
    done(as_json, out, say("bot {bot_id}: updates by {mode}", bot_id=bot_id,
                           mode=say(f"telegram.mode.{out['mode']}")))


@telegram_app.command("list")
def list_bots(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Connected bots: how updates arrive, chats, last update and error."""
    with runtime() as rt, rt.uow.read() as conn:
        bots = telegram.list_bots(conn, actor=acting(rt, as_user))
    if as_json:
        emit_json(bots)
        return
    table = Table(say("bot"), say("telegram.mode"), say("groups"), say("telegram.admin_in"),
                  say("telegram.last_update"), say("last error"))
    for b in bots:
        s = b["status"]
        table.add_row(f"@{b['username']} ({b['bot_id']})", say(f"telegram.mode.{b['mode']}"),
                      str(b["chats"]), str(b["admin_chats"]), str(s.get("last_update_at", "")),
                      str(s.get("last_error", "")))
    console.print(table)


@telegram_app.command("chats")
def list_chats(bot_id: Annotated[str | None, typer.Argument()] = None, as_user: AsOpt = None,
               as_json: JsonOpt = False) -> None:
    """The chats a bot is in, its status and the rights it lacks there."""
    with runtime() as rt, rt.uow.read() as conn:
        chats = telegram.list_chats(conn, actor=acting(rt, as_user), bot_id=bot_id)
    if as_json:
        emit_json(chats)
        return
    table = Table(say("group"), "id", say("bot"), say("status"), say("telegram.missing"))
    for c in chats:
        table.add_row(c["title"], c["chat_id"], c["bot_id"],
                      say(f"telegram.status.{c['status']}"),
                      "、".join(say(f"telegram.right.{r}") for r in c["missing"]))
    console.print(table)


@telegram_app.command("sync")
def sync(bot_id: Annotated[str | None, typer.Argument(help="Only this bot's groups")] = None,
         as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Read each group's owner and admins (the group's staff) and the bot's rights from
    Telegram."""
    with runtime() as rt:
        result = telegram.do_sync(rt.uow, actor=acting(rt, as_user), box=rt.box,
                                  clients=telegram_clients(rt), now=rt.now(), bot_id=bot_id)
    for chat_id, error in result.failed.items():
        console.print(say("group {chat_id}: {error}", chat_id=chat_id, error=error),
                      highlight=False)
    done(as_json, {"chats": result.chats, "admins": result.admins, "failed": result.failed},
         say("{chats} groups synced, {admins} owners and admins", chats=result.chats,
             admins=result.admins))
    if result.failed:
        raise typer.Exit(1)


@telegram_app.command("remove")
def remove_bot(bot_id: str, as_user: AsOpt = None) -> None:
    """Forget a bot (its chats' history stays)."""
    with runtime() as rt:
        telegram.do_remove_bot(rt.uow, actor=acting(rt, as_user), bot_id=bot_id)
    console.print(say("bot {bot_id} removed", bot_id=bot_id))


@telegram_app.command("poll")
def poll(once: Annotated[bool, typer.Option("--once", help="One round, then exit")] = False,
         timeout: Annotated[int, typer.Option(help="Long-poll seconds per round")] = 25,
         as_json: JsonOpt = False) -> None:
    """Long-poll every bot without a webhook, store the updates and process them (the
    worker does it too, with short polls)."""
    with runtime() as rt:
        adapter = _adapter(rt)
        total = {"stored": 0, "processed": 0, "failed": 0}
        while True:
            began = time.monotonic()
            stored, failed = telegram.poll_all(rt.uow, box=rt.box,
                                               clients=telegram_clients(rt), now=rt.now(),
                                               timeout=0 if once else timeout)
            total["stored"] += stored
            for bot_id, error in failed.items():
                console.print(say("bot {bot_id}: {error}", bot_id=bot_id, error=error),
                              highlight=False)
            stats = telegram.process_and_sync(rt.uow, adapter=adapter,
                                              config=rt.ingest_config, box=rt.box,
                                              clients=telegram_clients(rt), now=rt.now())
            total["processed"] += stats.processed
            total["failed"] += stats.failed
            if once:
                break
            if time.monotonic() - began < 1:  # no bot to long-poll: do not spin
                time.sleep(timeout)
    done(as_json, total, say("{stored} updates stored, {processed} processed, {failed} failed",
                             **total))
