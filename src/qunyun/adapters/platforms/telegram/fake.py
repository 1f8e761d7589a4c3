"""A fake Telegram Bot API server over HTTP for tests and benchmarks: the methods qunyun
calls, with the reply shapes of the Bot API (``{"ok", "result"}`` or ``{"ok": false,
"error_code", "description", "parameters"}``), a record of every call, errors injected per
method (429 with ``retry_after``, 400, 403, a dropped connection), and update builders that
queue updates for ``getUpdates`` exactly as Telegram would send them to a webhook.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ADMIN_RIGHTS = {"can_delete_messages": True, "can_restrict_members": True,
                "can_invite_users": True, "can_pin_messages": True, "can_change_info": True}


@dataclass
class FakeBot:
    token: str
    bot_id: int
    username: str
    webhook: dict[str, Any] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    started: set[int] = field(default_factory=set)  # users who pressed Start in a private chat
    # users who asked to join a chat, and when: the bot may write to them for 5 minutes
    requested: dict[int, float] = field(default_factory=dict)


@dataclass
class FakeChat:
    chat_id: int
    title: str
    type: str = "supergroup"
    members: dict[int, str] = field(default_factory=dict)  # user id → status
    names: dict[int, str] = field(default_factory=dict)  # user id → first name
    bot_rights: dict[int, dict[str, bool]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # invite link → name
    requests: dict[int, str] = field(default_factory=dict)  # user id → name, waiting
    pinned: int | None = None  # the pinned message's id


class FakeTelegram:
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.bots: dict[str, FakeBot] = {}
        self.chats: dict[int, FakeChat] = {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []  # (bot id, method, params)
        self.inject: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._dates = itertools.count(int(clock()))
        self._server: uvicorn.Server | None = None
        self.base_url = ""
        self.app = Starlette(routes=[Route("/bot{token}/{method}", self._api,
                                           methods=["POST", "GET"])])

    # --- set-up ----------------------------------------------------------------------------

    def add_bot(self, bot_id: int = 7000001, username: str = "qunyun_test_bot") -> str:
        token = f"{bot_id}:AAF{'x' * 32}{bot_id % 97:02d}"
        self.bots[token] = FakeBot(token, bot_id, username)
        return token

    def add_chat(self, chat_id: int, title: str, *, type_: str = "supergroup") -> FakeChat:
        chat = FakeChat(chat_id, title, type_)
        self.chats[chat_id] = chat
        return chat

    def fail(self, method: str, code: int, description: str = "injected", *,
             retry_after: int | None = None, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer this error (``code`` 0 drops the
        connection)."""
        for _ in range(times):
            self.inject[method].append({"code": code, "description": description,
                                        "retry_after": retry_after})

    def called(self, method: str) -> list[dict[str, Any]]:
        return [p for _b, m, p in self.calls if m == method]

    # --- updates as Telegram sends them ---------------------------------------------------

    def _push(self, token: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), kind: body}
        self.bots[token].updates.append(update)
        return update

    @staticmethod
    def user(uid: int, name: str) -> dict[str, Any]:
        first, _, last = name.partition(" ")
        out: dict[str, Any] = {"id": uid, "is_bot": False, "first_name": first}
        if last:
            out["last_name"] = last
        return out

    def _chat(self, chat_id: int) -> dict[str, Any]:
        chat = self.chats[chat_id]
        return {"id": chat.chat_id, "type": chat.type, "title": chat.title}

    def bot_added(self, token: str, chat_id: int, *, admin: bool = True,
                  rights: dict[str, bool] | None = None) -> dict[str, Any]:
        bot = self.bots[token]
        granted = dict(ADMIN_RIGHTS if rights is None else rights) if admin else {}
        self.chats[chat_id].bot_rights[bot.bot_id] = granted
        new = {"user": {"id": bot.bot_id, "is_bot": True, "first_name": bot.username,
                        "username": bot.username},
               "status": "administrator" if admin else "member", **granted}
        return self._push(token, "my_chat_member", {
            "chat": self._chat(chat_id), "from": self.user(1, "Owner"),
            "date": next(self._dates), "old_chat_member": {
                "user": new["user"], "status": "left"}, "new_chat_member": new})

    def message(self, token: str, chat_id: int, uid: int, name: str, text: str,
                **extra: Any) -> dict[str, Any]:
        self.chats[chat_id].members.setdefault(uid, "member")
        self.chats[chat_id].names[uid] = name
        return self._push(token, "message", {
            "message_id": next(self._message_ids), "date": next(self._dates),
            "chat": self._chat(chat_id), "from": self.user(uid, name), "text": text, **extra})

    def join(self, token: str, chat_id: int, uid: int, name: str, *, link_name: str = "",
             by: tuple[int, str] | None = None) -> dict[str, Any]:
        self.chats[chat_id].members[uid] = "member"
        self.chats[chat_id].names[uid] = name
        body: dict[str, Any] = {
            "chat": self._chat(chat_id), "from": self.user(*(by or (uid, name))),
            "date": next(self._dates),
            "old_chat_member": {"user": self.user(uid, name), "status": "left"},
            "new_chat_member": {"user": self.user(uid, name), "status": "member"}}
        if link_name:
            body["invite_link"] = self._link(link_name, requests=False)
        return self._push(token, "chat_member", body)

    def _link(self, name: str, *, requests: bool) -> dict[str, Any]:
        """A ChatInviteLink as updates carry it (the link itself shortened, as Telegram does
        for links the bot did not make)."""
        return {"invite_link": "https://t.me/+AbCd…", "name": name,
                "creator": self.user(1, "Owner"), "creates_join_request": requests,
                "is_primary": False, "is_revoked": False}

    def join_request(self, token: str, chat_id: int, uid: int, name: str, *,
                     link_name: str = "", bio: str = "") -> dict[str, Any]:
        """Someone asks to join through a link that needs an admin's approval."""
        chat = self.chats[chat_id]
        chat.requests[uid] = name
        for bot in self.bots.values():
            if bot.bot_id in chat.bot_rights:
                bot.requested[uid] = self._clock()
        body: dict[str, Any] = {"chat": self._chat(chat_id), "from": self.user(uid, name),
                                "user_chat_id": uid, "date": next(self._dates)}
        if bio:
            body["bio"] = bio
        if link_name:
            body["invite_link"] = self._link(link_name, requests=True)
        return self._push(token, "chat_join_request", body)

    def private(self, token: str, uid: int, name: str, text: str) -> dict[str, Any]:
        """The user writes to the bot in their private chat (an answer to its question)."""
        self.bots[token].started.add(uid)
        return self._push(token, "message", {
            "message_id": next(self._message_ids), "date": next(self._dates),
            "chat": {"id": uid, "type": "private", "first_name": name},
            "from": self.user(uid, name), "text": text})

    def promote(self, token: str, chat_id: int, uid: int, name: str, *,
                demote: bool = False, creator: bool = False,
                report: bool = True) -> dict[str, Any] | None:
        """A member made an admin (the owner, with ``creator``) or back to a member; with
        ``report=False`` it happened before the bot came, so no update tells the bot."""
        chat = self.chats[chat_id]
        old = chat.members.get(uid, "member")
        new = "member" if demote else "creator" if creator else "administrator"
        chat.members[uid], chat.names[uid] = new, name
        if not report:
            return None
        return self._push(token, "chat_member", {
            "chat": self._chat(chat_id), "from": self.user(uid, name),
            "date": next(self._dates),
            "old_chat_member": {"user": self.user(uid, name), "status": old},
            "new_chat_member": {"user": self.user(uid, name), "status": new}})

    def leave(self, token: str, chat_id: int, uid: int, name: str, *,
              by: tuple[int, str] | None = None) -> dict[str, Any]:
        self.chats[chat_id].members[uid] = "kicked" if by else "left"
        return self._push(token, "chat_member", {
            "chat": self._chat(chat_id), "from": self.user(*(by or (uid, name))),
            "date": next(self._dates),
            "old_chat_member": {"user": self.user(uid, name), "status": "member"},
            "new_chat_member": {"user": self.user(uid, name),
                                "status": "kicked" if by else "left"}})

    # --- serving -----------------------------------------------------------------------------

    def serve(self) -> FakeTelegram:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning",
                                                     lifespan="off"))
        threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                         daemon=True).start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake Telegram server did not start")
            time.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    async def _api(self, request: Request) -> Response:
        bot = self.bots.get(request.path_params["token"])
        method = request.path_params["method"]
        if bot is None:
            return _error(401, "Unauthorized")
        try:
            params = await request.json() if await request.body() else {}
        except ValueError:
            return _error(400, "Bad Request: can't parse JSON")
        with self._lock:
            if self.inject[method]:
                injected = self.inject[method].pop(0)
                if injected["code"] == 0:
                    raise ConnectionResetError("injected dropped connection")
                return _error(injected["code"], injected["description"],
                              injected["retry_after"])
            self.calls.append((str(bot.bot_id), method, params))
            handler = getattr(self, "m_" + method, None)
            if handler is None:
                return _error(404, "Not Found: method not found")
            result = handler(bot, params)
        if isinstance(result, Response):
            return result
        return JSONResponse({"ok": True, "result": result})

    # --- methods ---------------------------------------------------------------------------

    def m_getMe(self, bot: FakeBot, p: dict[str, Any]) -> Any:
        return {"id": bot.bot_id, "is_bot": True, "first_name": "qunyun",
                "username": bot.username, "can_join_groups": True,
                "can_read_all_group_messages": False}

    def m_setWebhook(self, bot: FakeBot, p: dict[str, Any]) -> Any:
        if not str(p.get("url", "")).startswith("https://"):
            return _error(400, "Bad Request: bad webhook: HTTPS url must be provided")
        bot.webhook = dict(p)
        return True

    def m_deleteWebhook(self, bot: FakeBot, p: dict[str, Any]) -> Any:
        bot.webhook = {}
        return True

    def m_getWebhookInfo(self, bot: FakeBot, p: dict[str, Any]) -> Any:
        return {"url": bot.webhook.get("url", ""), "pending_update_count": len(bot.updates)}

    def m_getUpdates(self, bot: FakeBot, p: dict[str, Any]) -> Any:
        if bot.webhook:
            return _error(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(p.get("offset", 0))
        bot.updates = [u for u in bot.updates if u["update_id"] >= offset]  # confirmed
        return bot.updates[:int(p.get("limit", 100))]

    def _chat_or_error(self, p: dict[str, Any]) -> FakeChat | Response:
        chat = self.chats.get(int(p.get("chat_id", 0)))
        if chat is None:
            return _error(400, "Bad Request: chat not found")
        return chat

    def _allowed(self, bot: FakeBot, p: dict[str, Any], right: str) -> FakeChat | Response:
        """The chat of the call when the bot is an admin there with ``right``, else the
        error Telegram answers."""
        chat = self._chat_or_error(p)
        if isinstance(chat, Response):
            return chat
        rights = chat.bot_rights.get(bot.bot_id)
        if rights is None:
            return _error(403, "Forbidden: bot is not a member of the supergroup chat")
        if not rights.get(right):
            return _error(400, "Bad Request: not enough rights")
        return chat

    def start(self, token: str, uid: int, name: str) -> dict[str, Any]:
        """The user opens a private chat with the bot and presses Start."""
        self.bots[token].started.add(uid)
        return self._push(token, "message", {
            "message_id": next(self._message_ids), "date": next(self._dates),
            "chat": {"id": uid, "type": "private", "first_name": name},
            "from": self.user(uid, name), "text": "/start"})

    def block(self, token: str, uid: int, name: str) -> dict[str, Any]:
        """The user blocks the bot: it may no longer write to them."""
        bot = self.bots[token]
        bot.started.discard(uid)
        me = {"id": bot.bot_id, "is_bot": True, "first_name": bot.username}
        return self._push(token, "my_chat_member", {
            "chat": {"id": uid, "type": "private", "first_name": name},
            "from": self.user(uid, name), "date": next(self._dates),
            "old_chat_member": {"user": me, "status": "member"},
            "new_chat_member": {"user": me, "status": "kicked", "until_date": 0}})

    def m_sendMessage(self, bot: FakeBot, p: dict[str, Any]) -> Any:
        target = int(p.get("chat_id", 0))
        if target > 0:  # a private chat: with users who started the bot, or asked to join
            # a group within the last 5 minutes (the join request's user_chat_id)
            asked = bot.requested.get(target)
            if target not in bot.started and (asked is None or self._clock() - asked > 300):
                # (a blocked bot answers "bot was blocked by the user"; the same 403)
                return _error(403, "Forbidden: bot can't initiate conversation with a user")
            return {"message_id": next(self._message_ids), "date": int(self._clock()),
                    "chat": {"id": target, "type": "private"}, "text": p.get("text", "")}
        chat = self._chat_or_error(p)
        if isinstance(chat, Response):
            return chat
        if bot.bot_id not in chat.bot_rights:
            return _error(403, "Forbidden: bot was kicked from the supergroup chat")
        if not str(p.get("text", "")).strip():
            return _error(400, "Bad Request: message text is empty")
        return {"message_id": next(self._message_ids), "date": int(self._clock()),
                "chat": self._chat(chat.chat_id), "text": p["text"]}

    def m_getChatAdministrators(self, bot: FakeBot, p: dict[str, Any]) -> Any:
        chat = self._chat_or_error(p)
        if isinstance(chat, Response):
            return chat
        if bot.bot_id not in chat.bot_rights:
            return _error(403, "Forbidden: bot is not a member of the supergroup chat")
        people = [{"user": self.user(uid, chat.names.get(uid, str(uid))), "status": status}
                  for uid, status in chat.members.items()
                  if status in ("administrator", "creator")]
        bots = [{"user": {"id": b.bot_id, "is_bot": True, "first_name": b.username,
                          "username": b.username}, "status": "administrator", **rights}
                for b in self.bots.values()
                if (rights := chat.bot_rights.get(b.bot_id)) is not None and rights]
        return people + bots

    def m_deleteMessage(self, bot: FakeBot, p: dict[str, Any]) -> Any:
        chat = self._allowed(bot, p, "can_delete_messages")
        return chat if isinstance(chat, Response) else True

    def m_banChatMember(self, bot: FakeBot, p: dict[str, Any]) -> Any:
        chat = self._allowed(bot, p, "can_restrict_members")
        if isinstance(chat, Response):
            return chat
        chat.members[int(p["user_id"])] = "kicked"
        return True

    def m_unbanChatMember(self, bot: FakeBot, p: dict[str, Any]) -> Any:
        chat = self._allowed(bot, p, "can_restrict_members")
        if isinstance(chat, Response):
            return chat
        if chat.members.get(int(p["user_id"])) == "kicked":
            chat.members[int(p["user_id"])] = "left"
        return True

    def m_restrictChatMember(self, bot: FakeBot, p: dict[str, Any]) -> Any:
        chat = self._allowed(bot, p, "can_restrict_members")
        return chat if isinstance(chat, Response) else True

    def m_pinChatMessage(self, bot: FakeBot, p: dict[str, Any]) -> Any:
        chat = self._allowed(bot, p, "can_pin_messages")
        if isinstance(chat, Response):
            return chat
        chat.pinned = int(p["message_id"])
        return True

    def m_setChatTitle(self, bot: FakeBot, p: dict[str, Any]) -> Any:
        chat = self._allowed(bot, p, "can_change_info")
        if isinstance(chat, Response):
            return chat
        chat.title = str(p["title"])
        return True

    def m_createChatInviteLink(self, bot: FakeBot, p: dict[str, Any]) -> Any:
        chat = self._allowed(bot, p, "can_invite_users")
        if isinstance(chat, Response):
            return chat
        link = f"https://t.me/+fake{len(chat.links) + 1:04d}{chat.chat_id % 1000:03d}"
        chat.links[link] = str(p.get("name", ""))
        return {"invite_link": link, "name": p.get("name", ""), "creates_join_request": False,
                "is_primary": False, "is_revoked": False,
                "creator": {"id": bot.bot_id, "is_bot": True, "first_name": bot.username}}

    def _answer(self, bot: FakeBot, p: dict[str, Any], approve: bool) -> Any:
        chat = self._allowed(bot, p, "can_invite_users")
        if isinstance(chat, Response):
            return chat
        uid = int(p.get("user_id", 0))
        name = chat.requests.pop(uid, None)
        if name is None:
            return _error(400, "Bad Request: HIDE_REQUESTER_MISSING")
        if approve:  # Telegram then reports the join like any other
            self.join(bot.token, chat.chat_id, uid, name)
        return True

    def m_approveChatJoinRequest(self, bot: FakeBot, p: dict[str, Any]) -> Any:
        return self._answer(bot, p, True)

    def m_declineChatJoinRequest(self, bot: FakeBot, p: dict[str, Any]) -> Any:
        return self._answer(bot, p, False)

    def m_revokeChatInviteLink(self, bot: FakeBot, p: dict[str, Any]) -> Any:
        chat = self._chat_or_error(p)
        if isinstance(chat, Response):
            return chat
        if chat.links.pop(str(p.get("invite_link", "")), None) is None:
            return _error(400, "Bad Request: INVITE_HASH_EXPIRED")
        return {"invite_link": p["invite_link"], "is_revoked": True}


def _error(code: int, description: str, retry_after: int | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return JSONResponse(body, status_code=code)
