"""WeChat group system notices → structured notices (zh and en clients, text and XML).

The XML forms (``<sysmsg type="delchatroommember">``, ``sysmsgtemplate`` with member lists,
``revokemsg``) carry wxids and are preferred; the plain-text forms are parsed with tolerant
patterns (a leading space inside the quotes, emoji markup turned back into the emoji, names
joined by '、' or ', ').

A QR-scan notice always names exactly one joiner, so "黎丽、Amy" there is one person. An
invite or removal list may name several, and a nickname may itself contain '、': plain text
cannot tell them apart, so such notices keep the list as written (``listed``) and are marked
``exact=False``; the translator resolves the list against the names the group already knows
(``resolve_list``), and the XML form, when present, is exact.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

YOU = "\x00you"  # stands for the exporting account in subject/actor lists

INVITE = "invite"
QR_JOIN = "qr_join"
JOIN = "join"
REMOVE = "remove"
LEAVE = "leave"
RENAME = "rename"
RECALL = "recall"
PAT = "pat"
RED_PACKET = "red_packet"
ANNOUNCEMENT = "announcement"
OWNER_CHANGE = "owner_change"


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    wxid: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    kind: str
    actor: Person | None = None  # inviter, QR sharer, remover, renamer, recaller, patter
    subjects: tuple[Person, ...] = ()  # joiners, removed people, the patted person
    new_name: str = ""
    exact: bool = True  # False when names were split from plain text
    listed: str = ""  # the subject list as written, when it was split (see resolve_list)


_TAG = re.compile(r"<[^>]+>")
# WeChat writes an emoji in a notice as <span class="emoji emoji1f41f"></span>: the class
# names the code point(s), so the name can be matched with the emoji in a message's nickname
_EMOJI = re.compile(r'<span class="emoji emoji([0-9a-fA-F]+)"\s*>\s*</span>')


def _code_points(hexes: str) -> str:
    out = []
    i = 0
    while i < len(hexes):
        width = 5 if hexes[i] == "1" and len(hexes) - i >= 5 else 4
        try:
            out.append(chr(int(hexes[i:i + width], 16)))
        except ValueError:
            return ""
        i += width
    return "".join(out)


def _clean(name: str) -> str:
    """Emoji markup back to the emoji, other markup out, outer spaces off."""
    if "<" not in name:  # most names carry no markup: no regex pass
        return name.strip()
    return _TAG.sub("", _EMOJI.sub(lambda m: _code_points(m[1]), name)).strip()


_SEPARATOR = re.compile(r'"?\s*(?:、|, )\s*"?')


def _names(text: str) -> tuple[Person, ...]:
    parts = _SEPARATOR.split(text)
    return tuple(Person(name) for name in map(_clean, parts) if name)


def split_listed(text: str) -> list[tuple[str, str]]:
    """A written list as (name part, separator before the next part) pairs: the separators
    are kept so parts can be joined back into a name that contains one."""
    out: list[tuple[str, str]] = []
    pos = 0
    for m in _SEPARATOR.finditer(text):
        out.append((_clean(text[pos:m.start()]), m.group().strip().strip('"') or "、"))
        pos = m.end()
    out.append((_clean(text[pos:]), ""))
    return [(p, sep) for p, sep in out if p]


def resolve_list(text: str, known: set[str] | frozenset[str]) -> tuple[list[str], bool]:
    """The people a written list names, given the names the group already knows: parts
    are joined back ("黎丽"、"Amy" → "黎丽、Amy") where that makes a known name. Among the
    readings that cover the most parts with known names, the one with the most people wins
    (two unknown names are two people); ``ambiguous`` when another reading covers as many
    with known names (a known "黎丽、Amy" and a known "黎丽" and "Amy")."""
    parts = split_listed(text)
    n = len(parts)
    if n <= 1:
        return [p for p, _sep in parts], False
    # for parts[i:]: the most parts a reading covers with known names, the most people among
    # such readings (and their names), and how many readings reach that coverage
    covered = [0] * (n + 1)
    people = [0] * (n + 1)
    readings = [1] * (n + 1)
    names: list[list[str]] = [[] for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        spans = []
        name = ""
        for j in range(i, n):
            name += parts[j][0]
            spans.append((j, name, (j - i + 1 if name in known else 0) + covered[j + 1]))
            name += parts[j][1]
        covered[i] = max(c for _j, _name, c in spans)
        top = [(j, name) for j, name, c in spans if c == covered[i]]
        readings[i] = sum(readings[j + 1] for j, _name in top)
        j, name = max(top, key=lambda t: people[t[0] + 1])
        people[i] = 1 + people[j + 1]
        names[i] = [name, *names[j + 1]]
    return names[0], covered[0] > 0 and readings[0] > 1


def _one(text: str) -> Person:
    return Person(_clean(text))


_you = Person(YOU)

Builder = Callable[[re.Match[str]], Notice]
_PATTERNS: list[tuple[re.Pattern[str], Builder]] = []


def _on(*patterns: str) -> Callable[[Builder], Builder]:
    """Register a builder for the notice's wording in each client language (Chinese first,
    then English: the same notice, the same groups, one builder)."""
    def register(builder: Builder) -> Builder:
        _PATTERNS.extend((re.compile(pattern, re.S), builder) for pattern in patterns)
        return builder

    return register


# --- Chinese client (with the English wording of the same notice where it exists) ----------
@_on(r'^"(?P<a>.+?)"邀请你和"(?P<s>.+)"加入了群聊',
     r'^"?(?P<a>.+?)"? invited you and "?(?P<s>.+?)"? to the group chat')
def _invited_you_and(m: re.Match[str]) -> Notice:
    return Notice(INVITE, _one(m["a"]), (_you, *_names(m["s"])), exact=False,
                  listed=m["s"])


@_on(r'^"(?P<a>.+?)"邀请你加入了群聊',
     r'^"?(?P<a>.+?)"? invited you to (?:a|the) group chat')
def _invited_you(m: re.Match[str]) -> Notice:
    return Notice(INVITE, _one(m["a"]), (_you,))


@_on(r'^你邀请"(?P<s>.+)"加入了群聊',
     r'^You invited "?(?P<s>.+?)"? to the group chat')
def _you_invited(m: re.Match[str]) -> Notice:
    return Notice(INVITE, _you, _names(m["s"]), exact=False, listed=m["s"])


@_on(r'^"(?P<a>.+?)"邀请"(?P<s>.+)"加入了群聊',
     r'^"?(?P<a>.+?)"? invited "?(?P<s>.+?)"? to the group chat')
def _invite(m: re.Match[str]) -> Notice:
    return Notice(INVITE, _one(m["a"]), _names(m["s"]), exact=False, listed=m["s"])


@_on(r'^"(?P<s>.+?)"通过扫描你分享的二维码加入群聊',
     r'^"?(?P<s>.+?)"? joined the group chat via the QR [Cc]ode you shared')
def _qr_you(m: re.Match[str]) -> Notice:
    return Notice(QR_JOIN, _you, (_one(m["s"]),))  # a QR code admits one person


@_on(r'^"(?P<s>.+?)"通过扫描"(?P<a>.+?)"分享的二维码加入群聊',
     r'^"(?P<s>.+?)"通过"(?P<a>.+?)"的邀请二维码加入群聊',
     r'^"?(?P<s>.+?)"? joined the group chat via the QR [Cc]ode shared by "?(?P<a>.+?)"?\.?$')
def _qr(m: re.Match[str]) -> Notice:
    return Notice(QR_JOIN, _one(m["a"]), (_one(m["s"]),))  # a QR code admits one person


@_on(r'^你通过扫描二维码加入群聊')
def _zh_qr_self(m: re.Match[str]) -> Notice:
    return Notice(QR_JOIN, None, (_you,))


@_on(r'^"(?P<s>.+?)"加入了群聊',
     r'^"?(?P<s>.+?)"? joined the group chat\.?$')
def _join(m: re.Match[str]) -> Notice:
    return Notice(JOIN, None, _names(m["s"]), exact=False, listed=m["s"])


@_on(r'^你将"(?P<s>.+)"移出了群聊',
     r'^You removed "?(?P<s>.+?)"? from the group chat')
def _you_removed(m: re.Match[str]) -> Notice:
    return Notice(REMOVE, _you, _names(m["s"]), exact=False, listed=m["s"])


@_on(r'^你被"(?P<a>.+?)"移出群聊',
     r'^You were removed from the group chat by "?(?P<a>.+?)"?\.?$')
def _removed_you(m: re.Match[str]) -> Notice:
    return Notice(REMOVE, _one(m["a"]), (_you,))


@_on(r'^"(?P<a>.+?)"修改群名为“(?P<n>.*)”')
def _zh_rename(m: re.Match[str]) -> Notice:
    return Notice(RENAME, _one(m["a"]), new_name=m["n"])


@_on(r'^你修改群名为“(?P<n>.*)”')
def _zh_rename_you(m: re.Match[str]) -> Notice:
    return Notice(RENAME, _you, new_name=m["n"])


@_on(r'^"(?P<a>.+?)" ?撤回了一条消息')
def _zh_recall(m: re.Match[str]) -> Notice:
    return Notice(RECALL, _one(m["a"]))


@_on(r'^你撤回了一条消息')
def _zh_recall_you(m: re.Match[str]) -> Notice:
    return Notice(RECALL, _you)


@_on(r'^"(?P<a>.+?)" ?拍了拍 ?(?:"(?P<s>[^"]+)"|(?P<self>自己|我))')
def _zh_pat(m: re.Match[str]) -> Notice:
    target = _one(m["s"]) if m["s"] else _one(m["a"])
    return Notice(PAT, _one(m["a"]), (target,))


@_on(r'^你拍了拍 ?"(?P<s>[^"]+)"')
def _zh_pat_you(m: re.Match[str]) -> Notice:
    return Notice(PAT, _you, (_one(m["s"]),))


@_on(r'^(?:<img[^>]*>\s*)?(?P<a>.+?)领取了(?:你|(?P<s>.+?))的(?:<_wc_custom_link_[^>]*>)?红包')
def _zh_red_packet(m: re.Match[str]) -> Notice:
    claimer = _you if m["a"].strip() == "你" else _one(m["a"])
    sender = _one(m["s"]) if m["s"] else _you
    return Notice(RED_PACKET, sender, (claimer,))


@_on(r'^"(?P<a>.+?)"已成为新群主')
def _zh_owner(m: re.Match[str]) -> Notice:
    return Notice(OWNER_CHANGE, _one(m["a"]))


# --- QQ group notices (message-manager TXT; sender 系统消息) ----------------------------------
@_on(r'^(?P<s>.+?)被(?:管理员|群主)(?P<a>.*?)移出(?:了)?本群')
def _qq_removed(m: re.Match[str]) -> Notice:
    return Notice(REMOVE, _one(m["a"]) if m["a"].strip() else None, (_one(m["s"]),))


@_on(r'^(?P<s>.+?)(?:退出了本群|已退出本群|退出本群)')
def _qq_left(m: re.Match[str]) -> Notice:
    return Notice(LEAVE, None, (_one(m["s"]),))


@_on(r'^(?P<s>.+?)(?:加入本群|加入了本群)')
def _qq_join(m: re.Match[str]) -> Notice:
    return Notice(JOIN, None, (_one(m["s"]),))


# --- English client ------------------------------------------------------------------------
@_on(r'^"?(?P<a>.+?)"? changed the group name to "(?P<n>.*)"')
def _en_rename(m: re.Match[str]) -> Notice:
    actor = _you if m["a"] == "You" else _one(m["a"])
    return Notice(RENAME, actor, new_name=m["n"])


@_on(r'^"?(?P<a>.+?)"? recalled a message')
def _en_recall(m: re.Match[str]) -> Notice:
    actor = _you if m["a"] == "You" else _one(m["a"])
    return Notice(RECALL, actor)


@_on(r'^"?(?P<a>.+?)"? patted "?(?P<s>[^"]+?)"?(?:\s|$)')
def _en_pat(m: re.Match[str]) -> Notice:
    actor = _you if m["a"] == "You" else _one(m["a"])
    return Notice(PAT, actor, (_one(m["s"]),))


# --- XML forms -------------------------------------------------------------------------------
def _members(node: Element | None) -> tuple[Person, ...]:
    if node is None:
        return ()
    people = []
    for member in node.iter("member"):
        wxid = (member.findtext("username") or "").strip()
        name = _clean(member.findtext("nickname") or "") or wxid
        people.append(Person(name, wxid))
    if not people:  # delchatroommember lists bare <username> elements
        people = [Person(u.text.strip(), u.text.strip()) for u in node.iter("username")
                  if u.text and u.text.strip()]
    return tuple(people)


def _parse_xml(text: str) -> Notice | None:
    try:
        root = SafeET.fromstring(text.strip())
    except (SafeET.ParseError, DefusedXmlException, ValueError):
        return None
    kind = root.get("type", "")
    if kind == "revokemsg":
        content = root.findtext(".//content") or ""
        return parse_text(content) or Notice(RECALL)
    if kind == "delchatroommember":
        scene = (root.findtext(".//scene") or "").strip()
        subjects = _members(root.find(".//memberlist"))
        plain = (root.findtext(".//plain") or root.findtext(".//text") or "").strip()
        from_text = parse_text(plain) if plain else None
        actor = from_text.actor if from_text else None
        notice_kind = QR_JOIN if scene == "qrcode" else INVITE
        return Notice(notice_kind, actor, subjects or (from_text.subjects if from_text else ()))
    if kind == "sysmsgtemplate":
        template = root.findtext(".//template") or ""
        links: dict[str, tuple[Person, ...]] = {}
        for link in root.iter("link"):
            links[link.get("name", "")] = _members(link.find("memberlist"))
        # Fill the template with names, parse it as text, then swap in the exact people.
        filled = re.sub(r"\$(\w+)\$", lambda m: "、".join(p.name for p in links.get(m[1], ()))
                        or m[1], template)
        notice = parse_text(filled)
        if notice is None:
            return None
        subjects = (links.get("names") or links.get("adder") or links.get("kickerlist")
                    or notice.subjects)
        actor_people = links.get("username") or links.get("from") or ()
        actor = actor_people[0] if actor_people else notice.actor
        return Notice(notice.kind, actor, tuple(subjects), notice.new_name, exact=True)
    return None


def parse_text(text: str) -> Notice | None:
    """Parse a plain-text notice; None when it is not a notice we know."""
    text = text.strip()
    for pattern, build in _PATTERNS:
        match = pattern.search(text)
        if match:
            return build(match)
    return None


def parse_notice(text: str) -> Notice | None:
    """Parse a system notice in any form we know; None when unknown (counted by callers)."""
    stripped = text.strip()
    if stripped.startswith("<") and "sysmsg" in stripped[:200]:
        notice = _parse_xml(stripped)
        if notice is not None:
            return notice
    return parse_text(_TAG.sub("", stripped) if stripped.startswith("<") else stripped)
