"""The Telegram adapter: an admin bot may do what qunyun's rules ask, so they act by
themselves (on WeCom they become staff tasks).

Which bot speaks in a chat is the connector's business: ``client_for(chat_id)`` gives the
API client of the bot registered there (None when no bot of the team is in the chat). Errors
map onto the outbox's retry rules: 429 waits ``retry_after``, network and 5xx retry with
back-off, 403 (the bot was removed or blocked) and 400 (a request that cannot succeed) are
permanent with Telegram's reason.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from qunyun.adapters.platforms.base import (
    Delivery,
    JoinCodeLimits,
    JoinCodeMade,
    JoinCodeSpec,
    NeedsPersonError,
    ParseResult,
    PermanentSendError,
    PlatformAdapter,
    Receipt,
    SendRate,
    TransientSendError,
)
from qunyun.adapters.platforms.telegram import parse as telegram_parse
from qunyun.adapters.platforms.telegram.client import TelegramApiError, TelegramClient
from qunyun.domain.actions import (
    AnswerJoinRequest,
    Capability,
    DeleteMessage,
    MuteMember,
    RemoveMember,
    RenameGroup,
    RestoreMember,
    SendPrivate,
    SendText,
    UnmuteMember,
)
from qunyun.i18n import saying, spoken

CAPABILITIES = frozenset({
    Capability.SEND_TEXT, Capability.MENTION, Capability.REMOVE_MEMBER, Capability.MUTE_MEMBER,
    Capability.DELETE_MESSAGE,
    Capability.RESTORE_MEMBER, Capability.RENAME_GROUP, Capability.BROADCAST_UNCONFIRMED,
    Capability.SEND_PRIVATE,
    Capability.CREATE_JOIN_CODE, Capability.ANSWER_JOIN_REQUEST, Capability.PIN_MESSAGE,
})
# one named invite link per channel and group (a link belongs to one chat)
JOIN_CODE_LIMITS = JoinCodeLimits(max_groups=1,
                                  capacities=(200, 500, 1000, 2000, 5000, 10_000, 200_000))
# an automatic removal bans for a minute and lifts it: Telegram has no kick, and a ban under
# 30 s would be forever
KICK_SECONDS = 60
MAX_TEXT = 4096


def mention(user_id: str, name: str) -> str:
    """A mention by user id that works without a username; the name is escaped."""
    return f'<a href="tg://user?id={int(user_id)}">{html.escape(name or user_id)}</a>'


def render(delivery: Delivery, action: SendText) -> str:
    """The text as Telegram's HTML: the member's words escaped, @names turned into mentions
    of the members the action names."""
    text = html.escape(action.text, quote=False)
    for member_id in action.mention_member_ids:
        uid = delivery.member_external_ids.get(member_id)
        name = delivery.member_names.get(member_id, "")
        if not uid:
            continue
        plain = f"@{html.escape(name, quote=False)}" if name else ""
        tag = mention(uid, name)
        text = text.replace(plain, tag, 1) if plain and plain in text else f"{tag} {text}"
    return text[:MAX_TEXT]


class TelegramAdapter(PlatformAdapter):
    name: ClassVar[str] = "telegram"
    join_code_limits: JoinCodeLimits | None = JOIN_CODE_LIMITS
    # the Bot API's documented limits: ~30 messages a second, 20 a minute in one group
    send_rate: SendRate | None = SendRate(per_second=30.0, per_group_per_minute=20.0)

    def __init__(self, *, client_for: Callable[[str], TelegramClient | None],
                 bot_client: Callable[[str], TelegramClient] | None = None,
                 private_client_for: Callable[[str, str | None], TelegramClient | None]
                 | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """``client_for(chat_id)``: the client of the team's bot in that chat;
        ``bot_client(bot_id)``: a bot's client by its id (join codes name the bot);
        ``private_client_for(user_id, chat_id)``: a team bot the person wrote to privately
        (the chat's own preferred), None when they wrote to none."""
        self.capabilities = CAPABILITIES
        self._client_for = client_for
        self._bot_client = bot_client
        self._private_client_for = private_client_for
        self._clock = clock

    def parse(self, raw: Mapping[str, Any]) -> ParseResult:
        return telegram_parse.parse(raw)

    def _client(self, chat_id: str | None) -> TelegramClient:
        client = self._client_for(chat_id) if chat_id else None
        if client is None:
            raise PermanentSendError(f"no bot of the team is in Telegram chat {chat_id}")
        return client

    def send(self, delivery: Delivery) -> Receipt:
        action = delivery.action
        chat = delivery.chat_external_id
        if isinstance(action, SendPrivate):
            return self._send_private(delivery, action)
        client = self._client(chat)
        assert chat is not None
        try:
            if isinstance(action, SendText):
                sent = client.send_message(chat, render(delivery, action),
                                           reply_to=action.reply_to or None)
                message_id = str(sent.get("message_id", ""))
                return Receipt(platform_message_id=message_id,
                               detail=self._pin(client, chat, message_id) if action.pin
                               else {})
            if isinstance(action, RemoveMember):
                uid = self._member(delivery, action.member_id)
                client.ban(chat, uid, until=int(self._clock()) + KICK_SECONDS)
                if not action.blacklisted:  # a kick: they may come back by a new invitation
                    client.unban(chat, uid)
                return Receipt(detail={"unbanned": not action.blacklisted})
            if isinstance(action, MuteMember):
                # at least a minute: Telegram reads a mute under 30 s as forever
                client.restrict(chat, self._member(delivery, action.member_id),
                                until=int(self._clock()) + max(60, action.minutes * 60))
                return Receipt()
            if isinstance(action, UnmuteMember):
                client.unrestrict(chat, self._member(delivery, action.member_id))
                return Receipt()
            if isinstance(action, DeleteMessage):
                client.delete_message(chat, action.message_id)
                return Receipt()
            if isinstance(action, RestoreMember):
                client.unban(chat, self._member(delivery, action.member_id))
                return Receipt()
            if isinstance(action, AnswerJoinRequest):
                client.answer_join_request(chat, self._member(delivery, action.member_id),
                                           approve=action.approve)
                return Receipt(detail={"approved": action.approve})
            if isinstance(action, RenameGroup):
                client.set_title(chat, action.new_name[:128])
                return Receipt()
        except TelegramApiError as exc:
            raise _send_error(exc, action.type_name) from None
        raise PermanentSendError(f"Telegram cannot perform {action.type_name}")

    def _send_private(self, delivery: Delivery, action: SendPrivate) -> Receipt:
        """A private chat's id is the user's. It goes through a team bot the person wrote to
        (the group's own first); else through the group's bot, which Telegram lets write to
        an applicant for 5 minutes after a join request and refuses (403) otherwise — said
        in the row's reason."""
        uid = self._member(delivery, action.member_id)
        chat = delivery.chat_external_id
        client = (self._private_client_for(uid, chat) if self._private_client_for else None
                  ) or self._client(chat)
        try:
            sent = client.send_message(uid, html.escape(action.text, quote=False)[:MAX_TEXT])
        except TelegramApiError as exc:
            if exc.code == 403:
                raise PermanentSendError(
                    "skipped: the member has not started any of the team's bots (or blocked "
                    f"it), so none may message them privately (Telegram: {exc.description})"
                ) from None
            raise _send_error(exc, action.type_name) from None
        return Receipt(platform_message_id=str(sent.get("message_id", "")))

    @staticmethod
    def _pin(client: TelegramClient, chat: str, message_id: str) -> dict[str, Any]:
        """Pin what was just sent. The message is out either way: a pin the bot may not make
        is said in the receipt, never a reason to send again."""
        try:
            client.pin(chat, message_id)
        except TelegramApiError as exc:
            return {"pinned": False, "pin_error": exc.description or str(exc)}
        return {"pinned": True}

    @staticmethod
    def _member(delivery: Delivery, member_id: int) -> str:
        uid = delivery.member_external_ids.get(member_id)
        if not uid:
            raise PermanentSendError(f"member {member_id} has no Telegram identity")
        return uid

    # --- join codes: a named invite link ------------------------------------------------------

    def check_account(self, account: str) -> None:
        """``account`` is a connected bot's id (join codes are made by that bot)."""
        if self._bot_client is None:
            raise PermanentSendError("no Telegram bot is registered")
        self._bot_client(account)

    def create_join_code(self, account: str, spec: JoinCodeSpec) -> JoinCodeMade:
        assert self._bot_client is not None
        (chat,) = spec.chats[:1] or ("",)
        link = self._bot_client(account).create_invite_link(chat, spec.channel)
        return JoinCodeMade(code_id=f"{chat} {link['invite_link']}",
                            link=str(link["invite_link"]))

    def update_join_code(self, account: str, code_id: str, spec: JoinCodeSpec) -> JoinCodeMade:
        """A link belongs to one chat: pointing it elsewhere revokes it and makes a new one
        with the same name (the channel keeps counting)."""
        self.delete_join_code(account, code_id)
        return self.create_join_code(account, spec)

    def delete_join_code(self, account: str, code_id: str) -> None:
        assert self._bot_client is not None
        chat, _, link = code_id.partition(" ")
        try:
            self._bot_client(account).revoke_invite_link(chat, link)
        except TelegramApiError as exc:
            if exc.code != 400:  # a link Telegram no longer has counts as removed
                raise


# what each action needs the bot to be allowed, in the words of the right's name
NEEDED = {"remove_member": "can_restrict_members", "mute_member": "can_restrict_members",
          "delete_message": "can_delete_messages", "unmute_member": "can_restrict_members",
          "restore_member": "can_restrict_members", "rename_group": "can_change_info",
          "answer_join_request": "can_invite_users"}


def _send_error(exc: TelegramApiError, action: str = ""
                ) -> TransientSendError | PermanentSendError:
    if exc.transient:
        return TransientSendError(str(exc), retry_after=exc.retry_after)
    if exc.code == 400 and "not enough rights" in exc.description.lower():
        code = NEEDED.get(action)
        words = (saying("telegram.needs_right", right=saying(f"telegram.right.{code}"))
                 if code else saying("telegram.needs_rights"))
        # the stored text in the team's first language, the words for every reader
        return NeedsPersonError(f"{spoken(words, 'zh-CN')}（Telegram: {exc.description}）",
                                says=words)
    return PermanentSendError(str(exc))
