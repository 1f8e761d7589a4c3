"""WeCom customer groups: what the official API allows, declared as capabilities.

The API cannot post in a customer group, remove a member, or send without the owner tapping
"send" in the client (protocols/WECOM_AND_EXPORTS.md §1). So the adapter declares no
``send_text``/``remove_member``/``broadcast_unconfirmed``: the outbox makes those staff tasks,
and pushes become owner-confirmed group sends (``add_msg_template``) that qunyun polls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from qunyun.adapters.platforms.base import (
    CONFIRM_FAILED,
    CONFIRM_PENDING,
    CONFIRM_SENT,
    ConfirmTicket,
    Delivery,
    JoinCodeLimits,
    JoinCodeMade,
    JoinCodeSpec,
    ParseResult,
    PermanentSendError,
    PlatformAdapter,
    Receipt,
)
from qunyun.adapters.platforms.wecom import parse as wecom_parse
from qunyun.adapters.platforms.wecom.client import WecomApiError, WecomClient
from qunyun.domain.actions import Capability
from qunyun.domain.events import ChatRef, JoinScene
from qunyun.domain.groups import Roster, RosterMember

CAPABILITIES = frozenset({Capability.BROADCAST_NEEDS_CONFIRMATION, Capability.SEND_IMAGE,
                          Capability.SEND_LINK, Capability.SEND_MINIPROGRAM,
                          Capability.CREATE_JOIN_CODE})
# a join way holds at most five groups; groups hold 100 (QR joins), 200 or 500 people
JOIN_CODE_LIMITS = JoinCodeLimits(max_groups=5, capacities=(100, 200, 500))
ALREADY_GONE = 41044  # del_join_way on a code WeCom no longer has

# get_groupmsg_send_result status: 0 not sent yet, 1 sent, 2 not a friend, 3 received another
# group send (the frequency cap)
SEND_STATUS = {0: (CONFIRM_PENDING, ""), 1: (CONFIRM_SENT, ""),
               2: (CONFIRM_FAILED, "客户不是好友 (not a contact)"),
               3: (CONFIRM_FAILED, "已收到其他群发或已取消 (frequency cap reached, or cancelled)")}


def wecom_attachments(attachments: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
    """qunyun attachments → add_msg_template's (images by URL; WeCom wants pic_url from its
    upload API, which the operator's URL must already be)."""
    out: list[dict[str, Any]] = []
    for a in attachments:
        kind = a.get("type", "")
        if kind == "image":
            out.append({"msgtype": "image", "image": {"pic_url": a["url"]}})
        elif kind == "link":
            out.append({"msgtype": "link", "link": {"title": a["title"], "url": a["url"],
                                                    "desc": a.get("desc", "")}})
        elif kind == "miniprogram":
            out.append({"msgtype": "miniprogram", "miniprogram": {
                "title": a["title"], "appid": a["appid"], "page": a["page"],
                "pic_media_id": a.get("pic_media_id", "")}})
    return out


class WecomAdapter(PlatformAdapter):
    name: ClassVar[str] = "wecom"
    join_code_limits: JoinCodeLimits | None = JOIN_CODE_LIMITS

    def __init__(self, *, clients: Callable[[str], WecomClient],
                 chat_home: Callable[[str], tuple[str, str] | None]) -> None:
        """``clients`` gives a corp's API client; ``chat_home`` a group's (corp id, owner
        userid) as last synced, or None for a group qunyun has not read yet."""
        self.capabilities = CAPABILITIES
        self._clients = clients
        self._chat_home = chat_home

    def client(self, corp_id: str) -> WecomClient:
        return self._clients(corp_id)

    def parse(self, raw: Mapping[str, Any]) -> ParseResult:
        return wecom_parse.parse(raw)

    def send(self, delivery: Delivery) -> Receipt:
        raise PermanentSendError(
            f"WeCom cannot perform {delivery.action.type_name} in customer groups")

    # --- reading -------------------------------------------------------------------------------

    def roster_of(self, corp_id: str, chat_id: str) -> Roster:
        data = self.client(corp_id).group_chat(chat_id)
        members = []
        for m in data.get("member_list", []):
            joined = m.get("join_time")
            members.append(RosterMember(
                person=wecom_parse.person(str(m["userid"]), str(m.get("name", "")
                                                                or m.get("group_nickname", ""))),
                joined_at=datetime.fromtimestamp(int(joined), UTC) if joined else None,
                scene=wecom_parse.API_JOIN_SCENES.get(int(m.get("join_scene", 0)),
                                                      JoinScene.UNKNOWN),
                inviter=(wecom_parse.person(str(m["invitor"]["userid"]))
                         if m.get("invitor", {}).get("userid") else None),
                channel=str(m.get("state", ""))))
        owner = str(data.get("owner", ""))
        return Roster(chat=ChatRef(external_id=chat_id, name=str(data.get("name", ""))),
                      taken_at=datetime.now(UTC),
                      owner=wecom_parse.person(owner) if owner else None,
                      announcement=str(data.get("notice", "")),
                      version=str(data.get("member_version", "")), members=tuple(members))

    def roster(self, chat_external_id: str) -> Roster:
        home = self._chat_home(chat_external_id)
        if home is None:
            raise PermanentSendError(f"group {chat_external_id} has not been synced from WeCom")
        return self.roster_of(home[0], chat_external_id)

    # --- join codes (群活码) --------------------------------------------------------------------

    @staticmethod
    def _join_way(spec: JoinCodeSpec) -> dict[str, Any]:
        """add_join_way / update_join_way's body: scene 2 (QR code), WeCom opens a new group
        named after ``room_base_name`` when all are full, ``state`` is the channel."""
        return {"scene": 2, "remark": spec.remark[:30], "auto_create_room": 1,
                "room_base_name": spec.room_base_name[:40], "room_base_id": 1,
                "chat_id_list": list(spec.chats), "state": spec.channel}

    def check_account(self, account: str) -> None:
        self.client(account)  # the client factory refuses a corp that is not connected

    def create_join_code(self, account: str, spec: JoinCodeSpec) -> JoinCodeMade:
        client = self.client(account)
        config_id = client.add_join_way(self._join_way(spec))
        return JoinCodeMade(config_id, self._qr(client, config_id))

    def update_join_code(self, account: str, code_id: str, spec: JoinCodeSpec) -> JoinCodeMade:
        client = self.client(account)
        client.update_join_way({"config_id": code_id, **self._join_way(spec)})
        return JoinCodeMade(code_id, "")  # the QR code stays the same

    def delete_join_code(self, account: str, code_id: str) -> None:
        try:
            self.client(account).del_join_way(code_id)
        except WecomApiError as exc:
            if exc.code != ALREADY_GONE:
                raise

    @staticmethod
    def _qr(client: WecomClient, config_id: str) -> str:
        """The code's QR image URL; empty when WeCom does not say (the code still works)."""
        try:
            return str(client.get_join_way(config_id).get("qr_code", ""))
        except WecomApiError:
            return ""

    # --- owner-confirmed group sends -------------------------------------------------------------

    def submit_confirmation(self, chats: Sequence[str], text: str,
                            attachments: Sequence[Mapping[str, str]]) -> list[ConfirmTicket]:
        """One add_msg_template per (corp, owner): only the owner can confirm their groups."""
        by_owner: dict[tuple[str, str], list[str]] = {}
        unknown: dict[str, str] = {}
        for chat in chats:
            home = self._chat_home(chat)
            if home is None:
                unknown[chat] = "群未同步，不知道群主 (group not synced: owner unknown)"
            else:
                by_owner.setdefault(home, []).append(chat)
        tickets: list[ConfirmTicket] = []
        for (corp_id, owner), ids in sorted(by_owner.items()):
            for start in range(0, len(ids), 2000):  # chat_id_list holds up to 2,000 groups
                part = ids[start:start + 2000]
                reply = self.client(corp_id).add_msg_template({
                    "chat_type": "group", "sender": owner, "chat_id_list": part,
                    "text": {"content": text}, "attachments": wecom_attachments(attachments)})
                failed = {str(c): "企业微信拒绝 (refused by WeCom)"
                          for c in reply.get("fail_list", [])}
                tickets.append(ConfirmTicket(f"{corp_id}|{owner}|{reply['msgid']}",
                                             tuple(part), failed))
        if unknown:
            tickets.append(ConfirmTicket("", tuple(unknown), unknown))
        return tickets

    def _ticket(self, ticket: str) -> tuple[WecomClient, str, str]:
        corp_id, owner, msgid = ticket.split("|", 2)
        return self.client(corp_id), owner, msgid

    def poll_confirmation(self, ticket: str) -> dict[str, tuple[str, str]]:
        client, owner, msgid = self._ticket(ticket)
        return {str(r["chat_id"]): SEND_STATUS.get(int(r.get("status", 0)),
                                                   (CONFIRM_FAILED, f"status {r.get('status')}"))
                for r in client.group_msg_results(msgid, owner) if r.get("chat_id")}

    def remind_confirmation(self, ticket: str) -> None:
        client, _owner, msgid = self._ticket(ticket)
        client.remind_group_msg(msgid)

    def cancel_confirmation(self, ticket: str) -> None:
        client, _owner, msgid = self._ticket(ticket)
        client.cancel_group_msg(msgid)
