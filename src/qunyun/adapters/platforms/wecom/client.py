"""A small WeCom server-API client: token cache, retries, back-off, rate limits, clear errors.

Every call is ``POST <base>/<path>?access_token=…`` with a JSON body and an ``errcode`` in the
reply (protocols/WECOM_AND_EXPORTS.md §1). The base URL can point at a fake or staging server
(``QUNYUN_WECOM_API_BASE``). Written on httpx rather than wechatpy: wechatpy 1.x has none of
the join-way, group-send task or statistics endpoints and retries with blocking sleeps we
could not bound.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from qunyun.adapters import logs
from qunyun.adapters.platforms.base import PlatformError
from qunyun.adapters.ratelimit import RateLimiter

DEFAULT_BASE = "https://qyapi.weixin.qq.com/cgi-bin"
# per corp and API: 10,000 calls a minute (doc 90454); stay a little under it
PER_API_PER_SECOND = 9_000 / 60

TOKEN_INVALID = {40014, 42001, 40001}
RATE_LIMITED = {45009, 45033}
BUSY = -1

# what an operator should read for the errors they can act on (doc 90313)
MESSAGES: dict[int, str] = {
    40001: "secret 不正确 (invalid secret)",
    40014: "access_token 无效 (invalid access_token)",
    42001: "access_token 已过期 (expired access_token)",
    45009: "接口调用超过限制 (API call limit reached)",
    45033: "接口并发调用超过限制 (too many concurrent calls)",
    48002: "应用无此接口权限：请在「客户联系 → 可调用接口的应用」中加入本应用 (API not allowed)",
    60011: "成员/部门无权限：群主需在应用可见范围内 (no permission for this member)",
    60020: "服务器 IP 不在企业可信 IP 白名单中 (IP not in the allow list)",
    40050: "客户群不存在 (chat_id does not exist)",
    49008: "客户群已解散 (the group was dismissed)",
    40096: "外部联系人 userid 不合法 (invalid external_userid)",
    84061: "不存在外部联系人的关系 (no such customer relationship)",
    50100: "分页游标无效 (invalid cursor)",
    81017: "请求个数超过限制：请按群主筛选 (too many ids in one request)",
    41055: "群欢迎语模板数量达到上限 (welcome template limit reached)",
    40126: "企业标签数量达到上限 3000 (corp tag limit reached)",
    41063: "群发消息正在被派发中，请稍后再试 (the send is still being dispatched)",
    41048: "无可发送的客户 (no recipients can be sent to)",
}


class WecomApiError(PlatformError):
    """WeCom answered with a non-zero errcode (or could not be reached)."""

    def __init__(self, code: int, message: str, *, path: str) -> None:
        hint = MESSAGES.get(code, "")
        super().__init__(f"WeCom {path}: errcode {code} {hint or message}".strip())
        self.code = code
        self.path = path
        self.raw_message = message

    @property
    def transient(self) -> bool:
        return self.code in RATE_LIMITED or self.code == BUSY or self.code == 0


class WecomClient:
    """One corp's API access; safe to share between threads."""

    def __init__(self, corp_id: str, secret: str, *, base_url: str = DEFAULT_BASE,
                 http: httpx.Client | None = None, limiter: RateLimiter | None = None,
                 max_retries: int = 3, backoff_seconds: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        logs.install()  # httpx logs full URLs: access_token and corpsecret must not show
        self.corp_id = corp_id
        self._secret = secret
        self.base_url = base_url.rstrip("/")
        self._http = http or httpx.Client(timeout=10.0)
        self._own_http = http is None
        self._limiter = limiter
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._token_until = 0.0
        self.calls = 0  # requests made, tokens included (the setup page shows them)

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    # --- transport ---------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, params: Mapping[str, Any],
                 body: Mapping[str, Any] | None) -> dict[str, Any]:
        if self._limiter is not None:
            wait = self._limiter.acquire(f"wecom:{self.corp_id}:{path}", PER_API_PER_SECOND,
                                         PER_API_PER_SECOND)
            if wait:
                self._sleep(wait)
        self.calls += 1
        try:
            reply = self._http.request(method, f"{self.base_url}/{path}", params=params,
                                       json=body if body is not None else None)
        except httpx.HTTPError as exc:
            raise WecomApiError(0, f"network error: {exc}", path=path) from None
        if reply.status_code >= 500:
            raise WecomApiError(BUSY, f"HTTP {reply.status_code}", path=path)
        try:
            data = reply.json()
        except ValueError:
            raise WecomApiError(-2, f"reply is not JSON (HTTP {reply.status_code})",
                                path=path) from None
        if not isinstance(data, dict):
            raise WecomApiError(-2, "reply is not a JSON object", path=path)
        return data

    def token(self, *, refresh: bool = False) -> str:
        with self._lock:
            if refresh or not self._token or self._clock() >= self._token_until:
                data = self._request("GET", "gettoken", params={
                    "corpid": self.corp_id, "corpsecret": self._secret}, body=None)
                code = int(data.get("errcode", 0))
                if code:
                    raise WecomApiError(code, str(data.get("errmsg", "")), path="gettoken")
                self._token = str(data["access_token"])
                # refresh five minutes early so a token never expires mid-call
                self._token_until = self._clock() + max(60, int(data.get("expires_in", 7200))
                                                        - 300)
            return self._token

    def call(self, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POST one API call; retry busy (-1) and rate-limited (45009/45033) replies with
        exponential back-off, refresh the token once when it is refused."""
        refreshed = False
        attempt = 0
        while True:
            data = self._request("POST", path, params={"access_token": self.token()},
                                 body=body or {})
            code = int(data.get("errcode", 0))
            if code == 0:
                return data
            if code in TOKEN_INVALID and not refreshed:
                refreshed = True
                self.token(refresh=True)
                continue
            if (code in RATE_LIMITED or code == BUSY) and attempt < self.max_retries:
                self._sleep(self.backoff_seconds * 2 ** attempt)
                attempt += 1
                continue
            raise WecomApiError(code, str(data.get("errmsg", "")), path=path)

    def pages(self, path: str, body: Mapping[str, Any], key: str) -> Iterator[dict[str, Any]]:
        """Every item of a cursor-paged list (``next_cursor`` empty = done)."""
        cursor = ""
        while True:
            data = self.call(path, {**body, "cursor": cursor})
            yield from data.get(key, [])
            cursor = str(data.get("next_cursor", ""))
            if not cursor:
                return

    # --- the endpoints qunyun uses ------------------------------------------------------------

    def group_chat_ids(self) -> list[str]:
        return [str(c["chat_id"]) for c in self.pages(
            "externalcontact/groupchat/list", {"status_filter": 0, "limit": 1000},
            "group_chat_list")]

    def group_chat(self, chat_id: str) -> dict[str, Any]:
        return dict(self.call("externalcontact/groupchat/get",
                              {"chat_id": chat_id, "need_name": 1})["group_chat"])

    def group_statistics_by_day(self, day_begin: int, day_end: int,
                                owners: list[str]) -> list[dict[str, Any]]:
        data = self.call("externalcontact/groupchat/statistic_group_by_day", {
            "day_begin_time": day_begin, "day_end_time": day_end,
            "owner_filter": {"userid_list": owners[:100]}})
        return list(data.get("items", []))

    def add_join_way(self, body: Mapping[str, Any]) -> str:
        return str(self.call("externalcontact/groupchat/add_join_way", body)["config_id"])

    def get_join_way(self, config_id: str) -> dict[str, Any]:
        return dict(self.call("externalcontact/groupchat/get_join_way",
                              {"config_id": config_id})["join_way"])

    def update_join_way(self, body: Mapping[str, Any]) -> None:
        self.call("externalcontact/groupchat/update_join_way", body)

    def del_join_way(self, config_id: str) -> None:
        self.call("externalcontact/groupchat/del_join_way", {"config_id": config_id})

    def add_welcome_template(self, body: Mapping[str, Any]) -> str:
        return str(self.call("externalcontact/group_welcome_template/add", body)["template_id"])

    def del_welcome_template(self, template_id: str) -> None:
        self.call("externalcontact/group_welcome_template/del", {"template_id": template_id})

    def add_msg_template(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.call("externalcontact/add_msg_template", body)

    def group_msg_tasks(self, msgid: str) -> list[dict[str, Any]]:
        return list(self.pages("externalcontact/get_groupmsg_task",
                               {"msgid": msgid, "limit": 1000}, "task_list"))

    def group_msg_results(self, msgid: str, userid: str) -> list[dict[str, Any]]:
        return list(self.pages("externalcontact/get_groupmsg_send_result",
                               {"msgid": msgid, "userid": userid, "limit": 1000}, "send_list"))

    def remind_group_msg(self, msgid: str) -> None:
        self.call("externalcontact/remind_groupmsg_send", {"msgid": msgid})

    def cancel_group_msg(self, msgid: str) -> None:
        self.call("externalcontact/cancel_groupmsg_send", {"msgid": msgid})

    def corp_tags(self) -> list[dict[str, Any]]:
        return list(self.call("externalcontact/get_corp_tag_list", {}).get("tag_group", []))

    def mark_tag(self, userid: str, external_userid: str, *, add: list[str],
                 remove: list[str]) -> None:
        self.call("externalcontact/mark_tag", {"userid": userid, "external_userid":
                                               external_userid, "add_tag": add,
                                               "remove_tag": remove})
