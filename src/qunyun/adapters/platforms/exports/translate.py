"""Export rows → domain events and identities, per format. Pure: no database.

This is the exports adapter's ``parse``: everything that differs between WeChat, Telegram
and IRC exports (which identity kind a sender id is, how "you" is named, how a notice reads)
lives here, so ``services/imports.py`` stores events without asking which platform it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from qunyun.adapters.platforms.exports import sysmsg
from qunyun.adapters.platforms.exports.formats import IRC_JOIN, IRC_LEAVE, IRC_NICK, ExportRow
from qunyun.domain.events import (
    ChatRef,
    DomainEvent,
    GroupNotice,
    GroupRenamed,
    JoinScene,
    LeaveScene,
    MemberJoined,
    MemberLeft,
    MessageRecalled,
    PersonRef,
)


class ExportTranslator:
    """Shared logic; subclasses set the platform and identity kind and translate notices."""

    platform = "export"
    user_kind = "user"

    def __init__(self) -> None:
        self.names: dict[tuple[str, str], str] = {}  # (chat, nickname) -> user id
        self.self_id = ""
        # every name a group is known to have (speakers, people named in notices, and what
        # the store already knew): lists in notices are read against them
        self.known: dict[str, set[str]] = {}
        self.ambiguous: list[str] = []  # lists that read two ways, as written

    def prime(self, speakers: Iterable[tuple[str, str, str, bool]]) -> None:
        """What a first look through the whole file tells: the names people speak under in
        each chat (chat, name, user id, is the exporter), and who the exporter is, so a
        notice early in the file reads the same as one late in it."""
        for chat, name, user_id, is_self in speakers:
            if name:
                self.known.setdefault(chat, set()).add(name)
            if is_self and user_id and not self.self_id:
                self.self_id = user_id

    def know(self, chat: str, names: Iterable[str]) -> None:
        self.known.setdefault(chat, set()).update(n for n in names if n)

    def learn(self, row: ExportRow) -> None:
        """Remember who is who from a member message (names seen in later notices)."""
        if row.sender_id and row.sender_name:
            self.names[(row.chat_id, row.sender_name)] = row.sender_id
        if row.sender_name:
            self.known.setdefault(row.chat_id, set()).add(row.sender_name)
        if row.is_self and row.sender_id:
            self.self_id = row.sender_id

    def subjects(self, chat: str, notice: sysmsg.Notice) -> list[sysmsg.Person]:
        """A notice's people, a list written in plain text read against the known names
        (a nickname may contain 、); the people named become known."""
        people = list(notice.subjects)
        if notice.listed and not notice.exact:
            names, ambiguous = sysmsg.resolve_list(notice.listed,
                                                   self.known.get(chat, set()))
            if ambiguous:
                self.ambiguous.append(notice.listed)
            you = [p for p in people if p.name == sysmsg.YOU]
            people = [*you, *(sysmsg.Person(n) for n in names)]
        known = self.known.setdefault(chat, set())
        for p in people:
            if p.name and p.name != sysmsg.YOU:
                known.add(p.name)
        if notice.actor is not None and notice.actor.name and notice.actor.name != sysmsg.YOU:
            known.add(notice.actor.name)
        return people

    def person(self, chat: str, name: str, user_id: str = "") -> PersonRef:
        if name == sysmsg.YOU:
            if self.self_id:
                return PersonRef(external_id=self.self_id, kind=self.user_kind)
            return PersonRef(external_id="export-owner", kind="self", name="我", weak=True)
        user_id = user_id or self.names.get((chat, name), "")
        if user_id:
            return PersonRef(external_id=user_id, kind=self.user_kind, name=name)
        return self.nickname(chat, name)

    @staticmethod
    def nickname(chat: str, name: str) -> PersonRef:
        """A nickname-only identity, scoped to the group, weak (for the CRM's merge review)."""
        return PersonRef(external_id=f"{chat}:{name}", kind="nickname", name=name, weak=True)

    def sender(self, row: ExportRow) -> PersonRef | None:
        if row.sender_id:
            return PersonRef(external_id=row.sender_id, kind=self.user_kind,
                             name=row.sender_name)
        if row.sender_name:
            return self.person(row.chat_id, row.sender_name)
        return None  # a row that names nobody

    def base(self, row: ExportRow, n: int) -> dict[str, Any]:
        return {"platform": self.platform, "occurred_at": row.at,
                "external_event_id": f"export:{row.chat_id}:{row.key}:{n}"}

    def notice_events(self, row: ExportRow) -> Iterator[DomainEvent]:
        """Domain events for a system row; nothing for a notice we cannot read."""
        return iter(())


class WeChatTranslator(ExportTranslator):
    platform = "wechat"
    user_kind = "wxid"

    def notice_events(self, row: ExportRow) -> Iterator[DomainEvent]:
        notice = sysmsg.parse_notice(row.text)
        if notice is None:
            return
        chat = ChatRef(external_id=row.chat_id)  # no name: a file name must not rename
        actor = (self.person(row.chat_id, notice.actor.name, notice.actor.wxid)
                 if notice.actor else None)
        subjects = [self.person(row.chat_id, p.name, p.wxid)
                    for p in self.subjects(row.chat_id, notice)]
        if notice.kind in (sysmsg.INVITE, sysmsg.QR_JOIN, sysmsg.JOIN):
            scene = {sysmsg.INVITE: JoinScene.INVITE, sysmsg.QR_JOIN: JoinScene.QR}.get(
                notice.kind, JoinScene.UNKNOWN)
            for n, who in enumerate(subjects):
                yield MemberJoined(**self.base(row, n), chat=chat, member=who, inviter=actor,
                                   scene=scene)
        elif notice.kind == sysmsg.REMOVE:
            for n, who in enumerate(subjects):
                yield MemberLeft(**self.base(row, n), chat=chat, member=who,
                                 scene=LeaveScene.REMOVED, by=actor)
        elif notice.kind == sysmsg.LEAVE:
            for n, who in enumerate(subjects):
                yield MemberLeft(**self.base(row, n), chat=chat, member=who,
                                 scene=LeaveScene.LEFT)
        elif notice.kind == sysmsg.RENAME:
            yield GroupRenamed(**self.base(row, 0), chat=chat, new_name=notice.new_name,
                               by=actor)
        elif notice.kind == sysmsg.RECALL and actor is not None:
            yield MessageRecalled(**self.base(row, 0), chat=chat, sender=actor,
                                  message_id=row.key)
        elif actor is not None:
            yield GroupNotice(**self.base(row, 0), chat=chat, notice=notice.kind, actor=actor,
                              targets=tuple(p.name for p in notice.subjects))


class QQTranslator(WeChatTranslator):
    """QQ group exports read like WeChat ones; people are QQ numbers."""

    platform = "qq"
    user_kind = "qq"


class TelegramTranslator(ExportTranslator):
    platform = "telegram"
    user_kind = "user"

    def notice_events(self, row: ExportRow) -> Iterator[DomainEvent]:
        s = row.service or {}
        chat = ChatRef(external_id=row.chat_id)
        action = s.get("action", "")
        actor = (PersonRef(external_id=str(s["actor_id"]), kind="user",
                           name=str(s.get("actor") or "")) if s.get("actor_id") else None)
        names = [str(x) for x in s.get("members") or [] if x]
        if action in ("invite_members", "create_group"):
            for n, name in enumerate(names):
                yield MemberJoined(**self.base(row, n), chat=chat,
                                   member=self.person(row.chat_id, name), inviter=actor,
                                   scene=JoinScene.INVITE)
        elif action in ("join_group_by_link", "join_group_by_request") and actor is not None:
            inviter = (self.person(row.chat_id, str(s["inviter"])) if s.get("inviter")
                       else None)
            yield MemberJoined(**self.base(row, 0), chat=chat, member=actor, inviter=inviter,
                               scene=JoinScene.QR)
        elif action == "remove_members":
            for n, name in enumerate(names):
                self_leave = actor is not None and name == actor.name
                who = actor if self_leave and actor else self.person(row.chat_id, name)
                yield MemberLeft(**self.base(row, n), chat=chat, member=who,
                                 scene=LeaveScene.LEFT if self_leave else LeaveScene.REMOVED,
                                 by=None if self_leave else actor)
        elif action == "edit_group_title":
            yield GroupRenamed(**self.base(row, 0), chat=chat, new_name=str(s.get("title", "")),
                               by=actor)
        elif actor is not None and action:
            yield GroupNotice(**self.base(row, 0), chat=chat, notice=action, actor=actor)


class IrcTranslator(ExportTranslator):
    platform = "irc"
    user_kind = "nick"

    def notice_events(self, row: ExportRow) -> Iterator[DomainEvent]:
        chat = ChatRef(external_id=row.chat_id)
        if m := IRC_JOIN.match(row.text):
            yield MemberJoined(**self.base(row, 0), chat=chat, scene=JoinScene.DIRECT,
                               member=PersonRef(external_id=m[1], kind="nick", name=m[1]))
        elif m := IRC_LEAVE.match(row.text):
            yield MemberLeft(**self.base(row, 0), chat=chat, scene=LeaveScene.LEFT,
                             member=PersonRef(external_id=m[1], kind="nick", name=m[1]))
        elif m := IRC_NICK.match(row.text):
            yield GroupNotice(**self.base(row, 0), chat=chat, notice="nick_change",
                              actor=PersonRef(external_id=m[1], kind="nick", name=m[1]),
                              targets=(m[2],))


TRANSLATORS: dict[str, type[ExportTranslator]] = {
    "memotrace": WeChatTranslator,
    "chatlog-json": WeChatTranslator,
    "chatlog-csv": WeChatTranslator,
    "pywxdump": WeChatTranslator,
    "qq-txt": QQTranslator,
    "telegram": TelegramTranslator,
    "irc": IrcTranslator,
}
