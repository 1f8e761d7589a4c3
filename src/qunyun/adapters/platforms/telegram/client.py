"""A small Telegram Bot API client: ``POST {base}/bot{token}/{method}`` with a JSON body; the
reply is ``{"ok": true, "result": …}`` or ``{"ok": false, "error_code", "description",
"parameters": {"retry_after"}}`` (protocols/TELEGRAM_AND_FISSION.md).

Written on httpx (already a dependency for WeCom) rather than python-telegram-bot: that
library is asyncio-first and brings its own update loop and persistence, while qunyun
stores updates in its raw inbox and drives sends from its outbox. The base URL comes from
``QUNYUN_TELEGRAM_API_BASE`` so tests and staging talk to a fake.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from qunyun.adapters import logs
from qunyun.adapters.platforms.base import PlatformError

DEFAULT_BASE = "https://api.telegram.org"
# the updates qunyun asks for (member changes need chat_member listed explicitly)
ALLOWED_UPDATES = ("message", "edited_message", "chat_member", "my_chat_member",
                   "chat_join_request", "callback_query")


class TelegramApiError(PlatformError):
    """The Bot API refused a call (or could not be reached: ``code`` 0)."""

    def __init__(self, method: str, code: int, description: str, *,
                 retry_after: float | None = None) -> None:
        super().__init__(f"Telegram {method}: {code} {description}".strip())
        self.method = method
        self.code = code
        self.description = description
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """Worth another try later: rate limited, Telegram busy, or unreachable."""
        return self.code in (0, 429) or self.code >= 500

    @property
    def gone(self) -> bool:
        """The bot was removed from the chat or blocked by the user (403)."""
        return self.code == 403


class TelegramClient:
    """One bot's API access; safe to share between threads (httpx.Client is)."""

    def __init__(self, token: str, *, base_url: str = DEFAULT_BASE,
                 http: httpx.Client | None = None, network_retries: int = 2,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        logs.install()  # the token is in every URL: it must not reach a log line
        self._token = token
        self.base_url = base_url.rstrip("/")
        self._http = http or httpx.Client(timeout=httpx.Timeout(10.0, read=65.0))
        self._owns_http = http is None
        self._retries = network_retries
        self._sleep = sleep

    @property
    def bot_id(self) -> str:
        """The bot's numeric id: the part of its token before the colon."""
        return self._token.split(":", 1)[0]

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def call(self, method: str, params: Mapping[str, Any] | None = None, *,
             timeout: float | None = None) -> Any:
        """One Bot API call; network errors are retried twice with back-off, everything
        else is raised as :class:`TelegramApiError` for the caller (the outbox) to judge."""
        url = f"{self.base_url}/bot{self._token}/{method}"
        for attempt in range(self._retries + 1):
            try:
                response = self._http.post(url, json=dict(params or {}),
                                           timeout=timeout if timeout else httpx.USE_CLIENT_DEFAULT)
            except httpx.HTTPError as exc:
                if attempt < self._retries:
                    self._sleep(0.5 * 2 ** attempt)
                    continue
                raise TelegramApiError(method, 0, f"unreachable ({type(exc).__name__})") from None
            try:
                reply = response.json()
            except ValueError:
                raise TelegramApiError(method, response.status_code,
                                       "the reply is not JSON") from None
            if isinstance(reply, dict) and reply.get("ok"):
                return reply.get("result")
            reply = reply if isinstance(reply, dict) else {}
            parameters = reply.get("parameters") or {}
            raise TelegramApiError(method, int(reply.get("error_code") or response.status_code),
                                   str(reply.get("description") or ""),
                                   retry_after=parameters.get("retry_after"))
        raise AssertionError("unreachable")  # pragma: no cover

    # --- the calls qunyun makes ------------------------------------------------------------

    def get_me(self) -> dict[str, Any]:
        return dict(self.call("getMe"))

    def set_webhook(self, url: str, secret_token: str) -> None:
        self.call("setWebhook", {"url": url, "secret_token": secret_token,
                                 "allowed_updates": list(ALLOWED_UPDATES)})

    def delete_webhook(self) -> None:
        self.call("deleteWebhook", {"drop_pending_updates": False})

    def webhook_info(self) -> dict[str, Any]:
        return dict(self.call("getWebhookInfo"))

    def get_updates(self, offset: int, *, timeout: int = 0,
                    limit: int = 100) -> list[dict[str, Any]]:
        return list(self.call("getUpdates", {"offset": offset, "timeout": timeout,
                                             "limit": limit,
                                             "allowed_updates": list(ALLOWED_UPDATES)},
                              timeout=timeout + 10))

    def get_chat(self, chat_id: str) -> dict[str, Any]:
        return dict(self.call("getChat", {"chat_id": chat_id}))

    def get_chat_member(self, chat_id: str, user_id: str) -> dict[str, Any]:
        return dict(self.call("getChatMember", {"chat_id": chat_id, "user_id": user_id}))

    def send_message(self, chat_id: str, text: str, *, reply_to: str | None = None
                     ) -> dict[str, Any]:
        params: dict[str, Any] = {"chat_id": chat_id, "text": text, "parse_mode": "HTML",
                                  "link_preview_options": {"is_disabled": True}}
        if reply_to and reply_to.isdigit():  # Telegram's message ids are numbers
            params["reply_parameters"] = {"message_id": int(reply_to),
                                          "allow_sending_without_reply": True}
        return dict(self.call("sendMessage", params))

    def pin(self, chat_id: str, message_id: str) -> None:
        """Pin quietly (members are not notified of the pin itself)."""
        self.call("pinChatMessage", {"chat_id": chat_id, "message_id": int(message_id),
                                     "disable_notification": True})

    def delete_message(self, chat_id: str, message_id: str) -> None:
        self.call("deleteMessage", {"chat_id": chat_id, "message_id": int(message_id)})

    def ban(self, chat_id: str, user_id: str, *, until: int = 0) -> None:
        self.call("banChatMember", {"chat_id": chat_id, "user_id": int(user_id),
                                    "until_date": until})

    def unban(self, chat_id: str, user_id: str) -> None:
        self.call("unbanChatMember", {"chat_id": chat_id, "user_id": int(user_id),
                                      "only_if_banned": True})

    def restrict(self, chat_id: str, user_id: str, *, until: int) -> None:
        """Mute: no messages of any kind until ``until`` (a Unix time)."""
        self.call("restrictChatMember", {
            "chat_id": chat_id, "user_id": int(user_id), "until_date": until,
            "permissions": {"can_send_messages": False, "can_send_other_messages": False,
                            "can_add_web_page_previews": False}})

    def unrestrict(self, chat_id: str, user_id: str) -> None:
        """Lift a mute: every permission back (Telegram's way of ending a restriction)."""
        self.call("restrictChatMember", {
            "chat_id": chat_id, "user_id": int(user_id),
            "permissions": {k: True for k in (
                "can_send_messages", "can_send_audios", "can_send_documents",
                "can_send_photos", "can_send_videos", "can_send_video_notes",
                "can_send_voice_notes", "can_send_polls", "can_send_other_messages",
                "can_add_web_page_previews", "can_invite_users")}})

    def set_title(self, chat_id: str, title: str) -> None:
        self.call("setChatTitle", {"chat_id": chat_id, "title": title})

    def create_invite_link(self, chat_id: str, name: str) -> dict[str, Any]:
        return dict(self.call("createChatInviteLink", {"chat_id": chat_id, "name": name[:32]}))

    def revoke_invite_link(self, chat_id: str, link: str) -> None:
        self.call("revokeChatInviteLink", {"chat_id": chat_id, "invite_link": link})

    def answer_join_request(self, chat_id: str, user_id: str, *, approve: bool) -> None:
        self.call("approveChatJoinRequest" if approve else "declineChatJoinRequest",
                  {"chat_id": chat_id, "user_id": int(user_id)})

    def admins(self, chat_id: str) -> Sequence[dict[str, Any]]:
        return list(self.call("getChatAdministrators", {"chat_id": chat_id}))
