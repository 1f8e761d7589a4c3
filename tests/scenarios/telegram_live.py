"""The live community of the seed scenarios on Telegram: the same raw events the sandbox
scenarios feed, turned into the Bot API's updates (numeric user ids, a supergroup per
chat, joins through named invite links or added by someone, removals as ``kicked``) and
taken through the Telegram adapter's parser, ingest, the rules and the outbox; the bot's
actions go over HTTP to the fake Bot API, which refuses what a real bot could not do.

A group is opened the Telegram way: its owner and admins exist before the bot is added
(Telegram never tells the bot about them), the bot is added as an admin, and the worker's
sync reads them — so the advisers are staff here as on the sandbox.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from qunyun.adapters.platforms.telegram.adapter import TelegramAdapter
from qunyun.adapters.platforms.telegram.fake import FakeTelegram
from qunyun.adapters.storage.tables import groups, identities
from qunyun.bootstrap import telegram_clients
from qunyun.services import groups as groups_service
from qunyun.services import telegram
from qunyun.services.ingest import IngestResult, do_ingest_event
from qunyun.services.users import SYSTEM
from tests.scenarios.live import RULES, WELCOME, Live


@dataclass
class TelegramLive(Live):
    tg: FakeTelegram = field(default_factory=FakeTelegram)
    token: str = ""
    bot_id: str = ""
    users: dict[str, int] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    chats: dict[str, int] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.token = self.tg.add_bot()
        bot = telegram.do_add_bot(self.runtime.uow, actor=SYSTEM, box=self.runtime.box,
                                  clients=telegram_clients(self.runtime), token=self.token,
                                  now=self.runtime.now())
        self.bot_id = bot["bot_id"]
        adapter = self.runtime.adapters["telegram"]
        assert isinstance(adapter, TelegramAdapter)
        # like the policy above: the limiter counts real seconds, a scenario's week one
        adapter.send_rate = None
        self.adapter = adapter

    # --- ids ------------------------------------------------------------------------------

    def uid(self, user: str, name: str = "") -> int:
        if name:
            self.names[user] = name
        return self.users.setdefault(user, 100_000 + len(self.users))

    def person(self, user: str, name: str = "") -> dict[str, Any]:
        return self.tg.user(self.uid(user, name), name or self.names.get(user, user))

    def chat(self, chat: str) -> dict[str, Any]:
        return {"id": self.chats[chat], "type": "supergroup",
                "title": self.tg.chats[self.chats[chat]].title}

    # --- the operator opens a group -------------------------------------------------------

    def group(self, chat: str, name: str, at: datetime, *, owner: str = "staff-0",
              owner_name: str = "顾问小林", admins: Sequence[str] = (),
              welcome: str = WELCOME, rules: str = RULES,
              **changes: Any) -> int:
        chat_id = self.chats.setdefault(chat, -1001_000_000_000 - len(self.chats))
        self.tg.add_chat(chat_id, name)
        self.tg.promote(self.token, chat_id, self.uid(owner, owner_name), owner_name,
                        creator=True, report=False)
        for admin in admins:
            self.tg.promote(self.token, chat_id, self.uid(admin), self.names.get(admin, admin),
                            report=False)
        added = self.tg.bot_added(self.token, chat_id)
        added["my_chat_member"]["date"] = int(at.timestamp())
        self._ingest(added, at)
        telegram.do_sync(self.runtime.uow, actor=SYSTEM, box=self.runtime.box,
                         clients=telegram_clients(self.runtime), now=at,
                         chat_ids=[str(chat_id)])
        gid = self.conn.execute(select(groups.c.id).where(
            groups.c.platform == "telegram", groups.c.external_id == str(chat_id))).scalar_one()
        groups_service.do_update_group(self.conn, actor=SYSTEM, group_id=gid, now=at, changes={
            "welcome_template": welcome, "rules_text": rules, **changes})
        return int(gid)

    # --- events ---------------------------------------------------------------------------

    def receive(self, raw: dict[str, Any], at: datetime) -> IngestResult:
        """The raw sandbox event as the Bot API's update."""
        date = int(at.timestamp())
        kind = raw["type"]
        if kind == "message":
            message: dict[str, Any] = {
                "message_id": next(self._ids), "date": date, "chat": self.chat(raw["chat"]),
                "from": self.person(raw["user"], raw.get("user_name", ""))}
            if raw.get("message_type") in ("image", "qrcode"):
                # a picture, a QR code among them: the bot does not read what is in it
                message |= {"photo": [{"file_id": f"p{self.seq}", "width": 512,
                                       "height": 512}], "caption": raw["text"]}
            else:
                message["text"] = raw["text"]
            update = {"message": message}
        elif kind in ("join", "leave"):
            member = self.person(raw["user"], raw.get("user_name", ""))
            by = raw.get("inviter") if kind == "join" else raw.get("by")
            actor = self.person(by, raw.get("inviter_name", "")) if by else member
            old, new = ("left", "member") if kind == "join" else (
                "member", "kicked" if by else "left")
            change: dict[str, Any] = {
                "chat": self.chat(raw["chat"]), "from": actor, "date": date,
                "old_chat_member": {"user": member, "status": old},
                "new_chat_member": {"user": member, "status": new}}
            if kind == "join" and raw.get("scene") == "qr" and raw.get("channel"):
                change["invite_link"] = {"invite_link": "https://t.me/+x", "name":
                                         raw["channel"], "creator": self.person("staff-0")}
            update = {"chat_member": change}
        elif kind == "join_request":
            uid = self.uid(raw["user"], raw.get("user_name", ""))
            chat_id = self.chats[raw["chat"]]
            # what the fake's own builder records: a request to answer, a 5-minute window
            # to write to the applicant
            self.tg.chats[chat_id].requests[uid] = raw.get("user_name", "")
            self.tg.bots[self.token].requested[uid] = time.time()
            request: dict[str, Any] = {"chat": self.chat(raw["chat"]),
                                       "from": self.person(raw["user"]), "user_chat_id": uid,
                                       "date": date, "bio": raw.get("bio", "")}
            if raw.get("channel"):
                request["invite_link"] = {"invite_link": "https://t.me/+req", "name":
                                          raw["channel"], "creates_join_request": True,
                                          "creator": self.person("staff-0")}
            update = {"chat_join_request": request}
        elif kind == "private":
            uid = self.uid(raw["user"])
            self.tg.bots[self.token].started.add(uid)
            update = {"message": {"message_id": next(self._ids), "date": date,
                                  "chat": {"id": uid, "type": "private"},
                                  "from": self.person(raw["user"]), "text": raw["text"]}}
        else:
            raise ValueError(f"no Telegram update for a raw {kind!r} event")
        return self._ingest(update, at)

    def _ingest(self, update: dict[str, Any], at: datetime) -> IngestResult:
        # as a webhook carries it: JSON, with its update id
        update = json.loads(json.dumps({"update_id": self.seq + 1_000_000, **update}))
        parsed = self.adapter.parse({"bot": self.bot_id, "update": update})
        result = IngestResult(inbound_event_id=None, duplicate=True)
        for event in parsed.events:
            result = do_ingest_event(self.conn, event, config=self.runtime.ingest_config,
                                     received_at=at)
        for follow in parsed.follow_ups:
            telegram.apply_follow_up(self.conn, self.bot_id, follow, update, at)
        return result

    # --- what the operator sees -------------------------------------------------------------

    def member(self, user: str) -> int:
        return int(self.conn.execute(select(identities.c.member_id).where(
            identities.c.platform == "telegram",
            identities.c.external_id == str(self.users[user]))).scalar_one())
