"""A fake WeCom server for tests, the callback bench and staging: the documented endpoints,
request/response shapes and error codes over real HTTP, per-corp rate limits, and callbacks
it signs and encrypts like WeCom does. State lives in memory; nothing here is qunyun logic.

``serve()`` starts it with uvicorn on a free loopback port; point ``QUNYUN_WECOM_API_BASE`` at
``fake.base_url``. People "join" through :meth:`FakeWecom.scan` (a join code) or
:meth:`FakeWecom.join` and the fake tells qunyun with a callback, as WeCom would.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from qunyun.adapters.platforms.wecom.crypto import WecomCrypto

QR_LIMIT = 200  # people who can join one group by its QR code


@dataclass
class FakeMember:
    userid: str
    type: int = 2
    join_time: int = 0
    join_scene: int = 3
    invitor: str = ""
    state: str = ""
    name: str = ""


@dataclass
class FakeChat:
    chat_id: str
    name: str
    owner: str
    create_time: int
    notice: str = ""
    status: int = 0
    members: dict[str, FakeMember] = field(default_factory=dict)
    version: str = "v0"
    dismissed: bool = False


@dataclass
class FakeCorp:
    corp_id: str
    secret: str
    crypto: WecomCrypto
    agent_id: int = 1000002


class FakeWecom:
    def __init__(self, *, rate_per_minute: int = 10_000, clock: Callable[[], float] = time.time
                 ) -> None:
        self.corps: dict[str, FakeCorp] = {}
        self.tokens: dict[str, str] = {}  # access_token -> corp_id
        self.chats: dict[str, FakeChat] = {}
        self.join_ways: dict[str, dict[str, Any]] = {}
        self.templates: dict[str, dict[str, Any]] = {}
        self.sends: dict[str, dict[str, Any]] = {}
        self.tag_groups: list[dict[str, Any]] = []
        self.marked: list[dict[str, Any]] = []
        self.rate_per_minute = rate_per_minute
        self.calls: defaultdict[str, int] = defaultdict(int)  # path -> calls answered
        self.inject: defaultdict[str, list[int]] = defaultdict(list)  # path -> errcodes to give
        self.callback_url = ""
        self._window: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self._ids = itertools.count(1)
        self._clock = clock
        self._lock = threading.RLock()
        self.app = Starlette(routes=[
            Route("/cgi-bin/gettoken", self._gettoken, methods=["GET"]),
            Route("/cgi-bin/{path:path}", self._api, methods=["POST"]),
        ])
        self.base_url = ""
        self._server: uvicorn.Server | None = None

    # --- setting the scene ---------------------------------------------------------------------

    def add_corp(self, corp_id: str, secret: str, token: str, aes_key: str) -> FakeCorp:
        corp = FakeCorp(corp_id, secret, WecomCrypto(token, aes_key, corp_id))
        self.corps[corp_id] = corp
        return corp

    def add_chat(self, chat_id: str, name: str, owner: str, *, members: int = 0,
                 created: int | None = None) -> FakeChat:
        with self._lock:
            chat = FakeChat(chat_id, name, owner, created or int(self._clock()))
            chat.members[owner] = FakeMember(owner, type=1, join_time=chat.create_time,
                                             join_scene=1)
            for i in range(members):
                uid = f"wm{chat_id[-6:]}{i:06d}"
                chat.members[uid] = FakeMember(uid, join_time=chat.create_time, join_scene=3,
                                               name=f"客户{i}")
            self.chats[chat_id] = chat
            return chat

    def _bump(self, chat: FakeChat) -> tuple[str, str]:
        last = chat.version
        chat.version = hashlib.md5(f"{chat.chat_id}{len(chat.members)}{next(self._ids)}"
                                   .encode()).hexdigest()
        return last, chat.version

    def join(self, chat_id: str, userid: str, *, scene: int = 3, state: str = "",
             name: str = "", at: int | None = None, notify: bool = True) -> str:
        """Someone joins; returns the callback XML (also posted when ``notify``)."""
        with self._lock:
            chat = self.chats[chat_id]
            at = at or int(self._clock())
            chat.members[userid] = FakeMember(userid, join_time=at, join_scene=scene,
                                              state=state, name=name)
            last, cur = self._bump(chat)
        xml = chat_update_xml(self._corp_of(chat), chat_id, "add_member", at, [userid],
                              join_scene=0 if scene != 3 else 3, last=last, cur=cur)
        if notify:
            self.send_callback(self._corp_of(chat), xml)
        return xml

    def leave(self, chat_id: str, userid: str, *, removed: bool = False, at: int | None = None,
              notify: bool = True) -> str:
        with self._lock:
            chat = self.chats[chat_id]
            at = at or int(self._clock())
            chat.members.pop(userid, None)
            last, cur = self._bump(chat)
        xml = chat_update_xml(self._corp_of(chat), chat_id, "del_member", at, [userid],
                              quit_scene=1 if removed else 0, last=last, cur=cur)
        if notify:
            self.send_callback(self._corp_of(chat), xml)
        return xml

    def scan(self, config_id: str, userid: str, *, name: str = "",
             notify: bool = True) -> str | None:
        """Someone scans a join code: WeCom seats them in the first attached group that still
        takes people by QR code; returns that chat id (None when every group is full)."""
        with self._lock:
            way = self.join_ways[config_id]
            for chat_id in way["chat_id_list"]:
                chat = self.chats.get(chat_id)
                if chat is not None and not chat.dismissed and len(chat.members) < QR_LIMIT:
                    break
            else:
                return None
        self.join(str(chat_id), userid, scene=3, state=str(way.get("state", "")), name=name,
                  notify=notify)
        return str(chat_id)

    def _corp_of(self, chat: FakeChat) -> str:
        return next(iter(self.corps)) if self.corps else ""

    def send_callback(self, corp_id: str, xml: str,
                      http: httpx.Client | None = None) -> int:
        """Sign, encrypt and POST a callback to ``callback_url``; returns the HTTP status."""
        if not self.callback_url:
            return 0
        corp = self.corps[corp_id]
        ts, nonce = str(int(self._clock())), secrets.token_hex(5)
        body, sig = corp.crypto.encrypt_callback(xml, timestamp=ts, nonce=nonce)
        params = {"msg_signature": sig, "timestamp": ts, "nonce": nonce}
        url = self.callback_url.format(corp_id=corp_id)
        if http is not None:
            return http.post(url, params=params, content=body).status_code
        with httpx.Client(timeout=10) as client:
            return client.post(url, params=params, content=body).status_code

    def confirm_send(self, msgid: str, userid: str, *, refused: dict[str, int] | None = None
                     ) -> None:
        """The owner taps 发送 in the client: their groups get it (or the given status)."""
        with self._lock:
            send = self.sends[msgid]
            send["tasks"][userid] = {"status": 2, "send_time": int(self._clock())}
            for chat_id, result in send["results"].items():
                if result["userid"] == userid:
                    result["status"] = (refused or {}).get(chat_id, 1)
                    result["send_time"] = int(self._clock())

    # --- serving -------------------------------------------------------------------------------

    def serve(self) -> FakeWecom:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                  daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake WeCom server did not start")
            time.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{port}/cgi-bin"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    # --- HTTP ----------------------------------------------------------------------------------

    async def _gettoken(self, request: Request) -> JSONResponse:
        corp = self.corps.get(request.query_params.get("corpid", ""))
        if corp is None or request.query_params.get("corpsecret") != corp.secret:
            return _err(40001, "invalid credential")
        token = secrets.token_hex(16)
        self.tokens[token] = corp.corp_id
        return JSONResponse({"errcode": 0, "errmsg": "ok", "access_token": token,
                             "expires_in": 7200})

    async def _api(self, request: Request) -> JSONResponse:
        path = request.path_params["path"]
        corp_id = self.tokens.get(request.query_params.get("access_token", ""))
        if corp_id is None:
            return _err(40014, "invalid access_token")
        try:
            body = await request.json()
        except ValueError:
            return _err(47001, "data format error")
        with self._lock:
            if self.inject[path]:
                return _err(self.inject[path].pop(0), "injected")
            minute = int(self._clock() // 60)
            self._window[(corp_id, path, minute)] += 1
            if self._window[(corp_id, path, minute)] > self.rate_per_minute:
                return _err(45009, "api freq out of limit")
            handler = HANDLERS.get(path)
            if handler is None:
                return _err(48002, f"api forbidden: {path}")
            self.calls[path] += 1
            reply = handler(self, corp_id, body)
        if "errcode" not in reply:
            reply = {"errcode": 0, "errmsg": "ok", **reply}
        return JSONResponse(reply)

    # --- endpoint handlers (shapes from docs 92120, 92122, 92229, 92366, 92135, 93338) --------

    def h_list(self, corp_id: str, body: dict[str, Any]) -> dict[str, Any]:
        limit = int(body.get("limit", 0))
        if not 1 <= limit <= 1000:
            return {"errcode": 40058, "errmsg": "limit must be 1..1000"}
        ids = sorted(self.chats)
        start = int(body.get("cursor") or 0)
        page = ids[start:start + limit]
        nxt = str(start + limit) if start + limit < len(ids) else ""
        return {"group_chat_list": [{"chat_id": c, "status": self.chats[c].status}
                                    for c in page], "next_cursor": nxt}

    def h_get(self, corp_id: str, body: dict[str, Any]) -> dict[str, Any]:
        chat = self.chats.get(str(body.get("chat_id", "")))
        if chat is None:
            return {"errcode": 40050, "errmsg": "chatid not found"}
        if chat.dismissed:
            return {"errcode": 49008, "errmsg": "chat dismissed"}
        members = []
        for m in chat.members.values():
            item: dict[str, Any] = {"userid": m.userid, "type": m.type,
                                    "join_time": m.join_time, "join_scene": m.join_scene,
                                    "group_nickname": ""}
            if m.invitor:
                item["invitor"] = {"userid": m.invitor}
            if m.state:
                item["state"] = m.state
            if body.get("need_name"):
                item["name"] = m.name
            members.append(item)
        return {"group_chat": {"chat_id": chat.chat_id, "name": chat.name, "owner": chat.owner,
                               "create_time": chat.create_time, "notice": chat.notice,
                               "admin_list": [], "member_list": members,
                               "member_version": chat.version}}

    def h_statistic_by_day(self, corp_id: str, body: dict[str, Any]) -> dict[str, Any]:
        begin = int(body.get("day_begin_time", 0))
        owners = set(body.get("owner_filter", {}).get("userid_list", []))
        chats = [c for c in self.chats.values() if not owners or c.owner in owners]
        return {"items": [{"stat_time": begin, "data": {
            "new_chat_cnt": 0, "chat_total": len(chats), "chat_has_msg": 0,
            "new_member_cnt": 0, "member_total": sum(len(c.members) for c in chats),
            "member_has_msg": 0, "msg_total": 0}}]}

    def _check_way(self, body: dict[str, Any]) -> dict[str, Any] | None:
        ids = body.get("chat_id_list", [])
        if not isinstance(ids, list) or not 1 <= len(ids) <= 5:
            return {"errcode": 40058, "errmsg": "chat_id_list must hold 1 to 5 groups"}
        if any(c not in self.chats for c in ids):
            return {"errcode": 40050, "errmsg": "chatid not found"}
        if len(str(body.get("state", ""))) > 30:
            return {"errcode": 40058, "errmsg": "state longer than 30 characters"}
        if int(body.get("scene", 0)) not in (1, 2):
            return {"errcode": 40058, "errmsg": "scene must be 1 or 2"}
        return None

    def h_add_join_way(self, corp_id: str, body: dict[str, Any]) -> dict[str, Any]:
        if (error := self._check_way(body)) is not None:
            return error
        config_id = f"cfg{next(self._ids):08x}"
        self.join_ways[config_id] = {
            "config_id": config_id, "scene": int(body["scene"]),
            "remark": str(body.get("remark", ""))[:30],
            "auto_create_room": int(body.get("auto_create_room", 1)),
            "room_base_name": str(body.get("room_base_name", "")),
            "room_base_id": int(body.get("room_base_id", 1)),
            "chat_id_list": list(body["chat_id_list"]), "state": str(body.get("state", "")),
            "qr_code": f"https://wework.qpic.cn/wwpic/fake_{config_id}/0"}
        return {"config_id": config_id}

    def h_get_join_way(self, corp_id: str, body: dict[str, Any]) -> dict[str, Any]:
        way = self.join_ways.get(str(body.get("config_id", "")))
        if way is None:
            return {"errcode": 41044, "errmsg": "invalid config_id"}
        return {"join_way": dict(way)}

    def h_update_join_way(self, corp_id: str, body: dict[str, Any]) -> dict[str, Any]:
        way = self.join_ways.get(str(body.get("config_id", "")))
        if way is None:
            return {"errcode": 41044, "errmsg": "invalid config_id"}
        if (error := self._check_way({**way, **body})) is not None:
            return error
        for key in ("scene", "remark", "auto_create_room", "room_base_name", "room_base_id",
                    "chat_id_list", "state"):
            if key in body:  # supplied fields overwrite (doc 92229)
                way[key] = body[key]
        return {}

    def h_del_join_way(self, corp_id: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.join_ways.pop(str(body.get("config_id", "")), None) is None:
            return {"errcode": 41044, "errmsg": "invalid config_id"}
        return {}

    def h_add_template(self, corp_id: str, body: dict[str, Any]) -> dict[str, Any]:
        if not str(body.get("text", {}).get("content", "")):
            return {"errcode": 41033, "errmsg": "text content required"}
        if len(self.templates) >= 100:
            return {"errcode": 41055, "errmsg": "template limit"}
        template_id = f"msg{next(self._ids):08x}"
        self.templates[template_id] = dict(body)
        return {"template_id": template_id}

    def h_del_template(self, corp_id: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.templates.pop(str(body.get("template_id", "")), None) is None:
            return {"errcode": 41034, "errmsg": "invalid template_id"}
        return {}

    def h_add_msg_template(self, corp_id: str, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("chat_type") != "group":
            return {"errcode": 40058, "errmsg": "this fake serves group sends only"}
        sender = str(body.get("sender", ""))
        ids = list(body.get("chat_id_list", []))
        if not sender:
            return {"errcode": 40058, "errmsg": "sender required for chat_type group"}
        if not ids or len(ids) > 2000:
            return {"errcode": 40058, "errmsg": "chat_id_list must hold 1 to 2000 groups"}
        if len(str(body.get("text", {}).get("content", "")).encode()) > 4000:
            return {"errcode": 40058, "errmsg": "text longer than 4000 bytes"}
        if len(body.get("attachments", [])) > 9:
            return {"errcode": 40058, "errmsg": "at most 9 attachments"}
        fail = [c for c in ids if c not in self.chats or self.chats[c].owner != sender]
        ok = [c for c in ids if c not in fail]
        if not ok:
            return {"errcode": 41048, "errmsg": "no customer to send"}
        msgid = f"msg{next(self._ids):012x}"
        self.sends[msgid] = {
            "body": dict(body), "tasks": {sender: {"status": 0, "send_time": 0}},
            "results": {c: {"userid": sender, "status": 0, "send_time": 0} for c in ok},
            "reminded": 0, "cancelled": False}
        return {"fail_list": fail, "msgid": msgid}

    def h_groupmsg_task(self, corp_id: str, body: dict[str, Any]) -> dict[str, Any]:
        send = self.sends.get(str(body.get("msgid", "")))
        if send is None:
            return {"errcode": 41062, "errmsg": "invalid msgid"}
        return {"task_list": [{"userid": u, **t} for u, t in send["tasks"].items()],
                "next_cursor": ""}

    def h_groupmsg_result(self, corp_id: str, body: dict[str, Any]) -> dict[str, Any]:
        send = self.sends.get(str(body.get("msgid", "")))
        if send is None:
            return {"errcode": 41062, "errmsg": "invalid msgid"}
        userid = str(body.get("userid", ""))
        return {"send_list": [{"chat_id": c, **r} for c, r in send["results"].items()
                              if r["userid"] == userid], "next_cursor": ""}

    def h_remind(self, corp_id: str, body: dict[str, Any]) -> dict[str, Any]:
        send = self.sends.get(str(body.get("msgid", "")))
        if send is None:
            return {"errcode": 41062, "errmsg": "invalid msgid"}
        if send["reminded"] >= 3:
            return {"errcode": 41064, "errmsg": "remind at most 3 times in 24 hours"}
        send["reminded"] += 1
        return {}

    def h_cancel(self, corp_id: str, body: dict[str, Any]) -> dict[str, Any]:
        send = self.sends.get(str(body.get("msgid", "")))
        if send is None:
            return {"errcode": 41062, "errmsg": "invalid msgid"}
        send["cancelled"] = True
        for result in send["results"].values():
            if result["status"] == 0:
                result["status"] = 3  # never sent
        return {}

    def h_corp_tags(self, corp_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"tag_group": [dict(g) for g in self.tag_groups]}

    def h_mark_tag(self, corp_id: str, body: dict[str, Any]) -> dict[str, Any]:
        known = {t["id"] for g in self.tag_groups for t in g["tag"]}
        if any(t not in known for t in body.get("add_tag", []) + body.get("remove_tag", [])):
            return {"errcode": 40068, "errmsg": "invalid tagid"}
        self.marked.append(dict(body))
        return {}


def _err(code: int, message: str) -> JSONResponse:
    return JSONResponse({"errcode": code, "errmsg": message})


HANDLERS: dict[str, Callable[[FakeWecom, str, dict[str, Any]], dict[str, Any]]] = {
    "externalcontact/groupchat/list": FakeWecom.h_list,
    "externalcontact/groupchat/get": FakeWecom.h_get,
    "externalcontact/groupchat/statistic_group_by_day": FakeWecom.h_statistic_by_day,
    "externalcontact/groupchat/add_join_way": FakeWecom.h_add_join_way,
    "externalcontact/groupchat/get_join_way": FakeWecom.h_get_join_way,
    "externalcontact/groupchat/update_join_way": FakeWecom.h_update_join_way,
    "externalcontact/groupchat/del_join_way": FakeWecom.h_del_join_way,
    "externalcontact/group_welcome_template/add": FakeWecom.h_add_template,
    "externalcontact/group_welcome_template/del": FakeWecom.h_del_template,
    "externalcontact/add_msg_template": FakeWecom.h_add_msg_template,
    "externalcontact/get_groupmsg_task": FakeWecom.h_groupmsg_task,
    "externalcontact/get_groupmsg_send_result": FakeWecom.h_groupmsg_result,
    "externalcontact/remind_groupmsg_send": FakeWecom.h_remind,
    "externalcontact/cancel_groupmsg_send": FakeWecom.h_cancel,
    "externalcontact/get_corp_tag_list": FakeWecom.h_corp_tags,
    "externalcontact/mark_tag": FakeWecom.h_mark_tag,
}


def chat_update_xml(corp_id: str, chat_id: str, detail: str, at: int, members: list[str], *,
                    join_scene: int = 0, quit_scene: int = 0, last: str = "",
                    cur: str = "") -> str:
    """A change_external_chat/update callback in the current ``<Item>`` form."""
    items = "".join(f"<Item><![CDATA[{m}]]></Item>" for m in members)
    return (f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName>"
            "<FromUserName><![CDATA[sys]]></FromUserName>"
            f"<CreateTime>{at}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            "<Event><![CDATA[change_external_chat]]></Event>"
            f"<ChatId><![CDATA[{chat_id}]]></ChatId><ChangeType><![CDATA[update]]></ChangeType>"
            f"<UpdateDetail><![CDATA[{detail}]]></UpdateDetail><JoinScene>{join_scene}"
            f"</JoinScene><QuitScene>{quit_scene}</QuitScene><MemChangeCnt>{len(members)}"
            f"</MemChangeCnt><MemChangeList>{items}</MemChangeList>"
            f"<LastMemVer><![CDATA[{last}]]></LastMemVer><CurMemVer><![CDATA[{cur}]]>"
            "</CurMemVer></xml>")


def signed_member_adds(crypto: WecomCrypto, corp_id: str, n: int, *, chats: int = 50,
                       at: int | None = None) -> list[tuple[dict[str, str], str]]:
    """``n`` distinct add_member callbacks, signed and encrypted as WeCom posts them:
    (query parameters, body) pairs for load tests and benchmarks."""
    now = int(time.time()) if at is None else at
    out = []
    for i in range(n):
        xml = chat_update_xml(corp_id, f"wrload{i % chats:04d}", "add_member", now,
                              [f"wm{i:08d}"], join_scene=3, last=f"v{i}", cur=f"v{i + 1}")
        ts, nonce = str(now), secrets.token_hex(5)
        body, sig = crypto.encrypt_callback(xml, timestamp=ts, nonce=nonce)
        out.append(({"msg_signature": sig, "timestamp": ts, "nonce": nonce}, body))
    return out
