"""Streaming readers: one export file → ``ExportRow`` values, in file order, constant memory.

Each reader names the line (or message index) of every row so errors can point at it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from qunyun.adapters.platforms.base import ParseError
from qunyun.adapters.platforms.exports.sysmsg import parse_notice

csv.field_size_limit(16 * 1024 * 1024)


@dataclass(slots=True)
class ExportRow:
    line: int
    chat_id: str
    chat_name: str
    at: datetime  # aware UTC
    sender_id: str  # platform user id when the export has one (wxid, user123), else ""
    sender_name: str
    text: str
    message_type: str  # text, image, voice, video, sticker, link, file, system, …
    key: str  # stable id for the message across re-imports and overlapping exports
    is_self: bool = False
    service: dict[str, Any] | None = None  # structured service action (Telegram)


@dataclass(slots=True)
class RowError:
    """A row that cannot be read; the reader goes on (``--on-error skip``) or the import stops."""

    line: int
    reason: str


class ExportError(ParseError):
    def __init__(self, path: Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


Row = ExportRow | RowError


def content_key(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:24]


class Occurrences:
    """Numbers identical rows (same time, sender, content) 1, 2, … so each keeps its own key.

    Only the current second is remembered, so memory stays flat however long the file:
    identical rows are consecutive in exports, which are written in time order. Keys start
    with the zero-padded unix second, so the unique index on (group, key) grows at its end
    as an export is read (hash-first keys scattered inserts over the whole index).
    """

    __slots__ = ("_at", "_seen")

    def __init__(self) -> None:
        self._at: object = None
        self._seen: dict[str, int] = {}

    def key(self, at: datetime, base: str) -> str:
        if at != self._at:
            self._at = at
            self._seen.clear()
        n = self._seen[base] = self._seen.get(base, 0) + 1
        return f"{int(at.timestamp()):011d}.{base}:{n}"


# --- MemoTrace / WeChatMsg CSV ----------------------------------------------------------------
MEMOTRACE_COLUMNS = ["localId", "TalkerId", "Type", "SubType", "IsSender", "CreateTime",
                     "Status", "StrContent", "StrTime", "Remark", "NickName", "Sender"]
WECHAT_TYPES = {"1": "text", "3": "image", "34": "voice", "43": "video", "47": "sticker",
                "48": "location", "50": "call", "10000": "system", "10002": "system"}
WECHAT_APP_SUBTYPES = {"57": "quote", "6": "file", "3": "music", "5": "link", "2000": "transfer",
                       "2001": "red_packet", "33": "mini_program", "36": "mini_program",
                       "19": "forward", "87": "announcement", "62": "pat"}


def wechat_type(type_code: str, sub_type: str) -> str:
    if type_code == "49":
        return WECHAT_APP_SUBTYPES.get(sub_type, "app")
    return WECHAT_TYPES.get(type_code, f"type_{type_code}")


def memotrace_group_name(path: Path) -> str:
    stem = path.stem
    return stem[: -len("_utf8")] if stem.endswith("_utf8") else stem


def read_memotrace(path: Path, fh: TextIO, group_name: str | None,
        day: date | None = None) -> Iterator[Row]:
    reader = csv.reader(fh)
    header = next(reader, None)
    if header is None:
        raise ExportError(path, 1, "empty file")
    header = [h.strip().lstrip("\ufeff") for h in header]
    missing = [c for c in ("TalkerId", "Type", "CreateTime", "StrContent") if c not in header]
    if missing:
        raise ExportError(path, 1, f"not a MemoTrace CSV: missing columns {missing}")
    idx = {name: i for i, name in enumerate(header)}
    name = group_name or memotrace_group_name(path)
    seen = Occurrences()
    for row in reader:
        line = reader.line_num
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):  # ragged: tolerate missing trailing cells
            row = row + [""] * (len(header) - len(row))

        def get(col: str, row: list[str] = row) -> str:
            i = idx.get(col)
            return row[i] if i is not None else ""

        try:
            at = datetime.fromtimestamp(int(float(get("CreateTime"))), tz=UTC)
        except (ValueError, OverflowError):
            yield RowError(line, f"CreateTime is not a unix time: {get('CreateTime')!r}")
            continue
        talker = get("TalkerId").strip() or name
        mtype = wechat_type(get("Type").strip(), get("SubType").strip())
        content = get("StrContent")
        sender = get("Sender").strip()
        base = content_key(talker, at.timestamp(), sender, mtype, content)
        yield ExportRow(line=line, chat_id=talker, chat_name=name, at=at, sender_id=sender,
                        sender_name=(get("NickName") or get("Remark") or sender).strip(),
                        text=content, message_type=mtype, key=seen.key(at, base),
                        is_self=get("IsSender").strip() == "1")


# --- sjzar/chatlog JSON -------------------------------------------------------------------------
def _parse_rfc3339(value: str) -> datetime | str:
    """The time, or the reason it is not one."""
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return f"time is not RFC 3339: {value!r}"
    if at.tzinfo is None:
        return f"time has no zone: {value!r}"
    return at.astimezone(UTC)


def read_chatlog_json(path: Path, fh: TextIO, group_name: str | None,
        day: date | None = None) -> Iterator[Row]:
    try:
        data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ExportError(path, exc.lineno, f"invalid JSON: {exc.msg}") from None
    items = data.get("items", data) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ExportError(path, 1, "expected a list of chatlog messages")
    for i, m in enumerate(items, 1):
        if not isinstance(m, dict) or "time" not in m or "talker" not in m:
            yield RowError(i, "message lacks 'time' or 'talker'")
            continue
        at = _parse_rfc3339(str(m["time"]))
        if isinstance(at, str):
            yield RowError(i, at)
            continue
        mtype = wechat_type(str(m.get("type", "")), str(m.get("subType", "")))
        seq = m.get("seq")
        key = str(seq) if seq is not None else content_key(m["talker"], at.timestamp(),
                                                           m.get("sender"), m.get("content"))
        yield ExportRow(line=i, chat_id=str(m["talker"]),
                        chat_name=group_name or str(m.get("talkerName") or m["talker"]), at=at,
                        sender_id=str(m.get("sender") or ""),
                        sender_name=str(m.get("senderName") or m.get("sender") or ""),
                        text=str(m.get("content") or ""), message_type=mtype, key=key,
                        is_self=bool(m.get("isSelf")))


# --- Telegram Desktop JSON ----------------------------------------------------------------------
def _telegram_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in value)
    return ""


def read_telegram(path: Path, fh: TextIO, group_name: str | None,
        day: date | None = None) -> Iterator[Row]:
    try:
        data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ExportError(path, exc.lineno, f"invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise ExportError(path, 1, "not a Telegram Desktop chat export (no 'messages' list)")
    chat_id = f"telegram:{data.get('id', memotrace_group_name(path))}"
    name = group_name or str(data.get("name") or chat_id)
    for i, m in enumerate(data["messages"], 1):
        try:
            at = datetime.fromtimestamp(int(m["date_unixtime"]), tz=UTC)
        except (KeyError, TypeError, ValueError):
            yield RowError(i, "message lacks a valid 'date_unixtime'")
            continue
        service = m.get("type") == "service"
        sender_id = str(m.get("actor_id") if service else m.get("from_id") or "")
        sender_name = str((m.get("actor") if service else m.get("from")) or "")
        yield ExportRow(line=i, chat_id=chat_id, chat_name=name, at=at, sender_id=sender_id,
                        sender_name=sender_name, text=_telegram_text(m.get("text")),
                        message_type="system" if service else str(m.get("media_type") or
                                                                    "text"),
                        key=str(m.get("id", i)),
                        service=m if service else None)


# --- IRC-style plain text --------------------------------------------------------------------
IRC_MESSAGE = re.compile(r"^\[(\d{1,2}):(\d{2})(?::(\d{2}))?\] <([^>]+)> ?(.*)$")
IRC_ACTION = re.compile(r"^\[(\d{1,2}):(\d{2})(?::(\d{2}))?\]\s+\* (\S+) ?(.*)$")
IRC_SYSTEM = re.compile(r"^(?:\[(\d{1,2}):(\d{2})(?::(\d{2}))?\] )?=== (.*)$")
IRC_JOIN = re.compile(r"^(\S+) \[[^\]]*\]\s+has joined (#\S+)")
IRC_LEAVE = re.compile(r"^(\S+) \[[^\]]*\]\s+has (?:left|quit)(?: (#\S+))?")
IRC_NICK = re.compile(r"^(\S+) is now known as (\S+)")
_FILE_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def read_irc(path: Path, fh: TextIO, group_name: str | None,
        day: date | None = None) -> Iterator[Row]:
    """``[HH:MM] <nick> text`` and ``=== nick … has joined/left``; times are UTC on the log's
    day: ``day`` when given, else the date in the file name (a log with neither is refused,
    not dated 1970); ``=== nick action`` lines are /me actions."""
    found = _FILE_DATE.search(path.name)
    if day is None and found is None:
        raise ExportError(path, 1, "an IRC log's lines carry only times, and this file's name "
                          "carries no date (like ubuntu-2024-01-15.txt): give the log's day "
                          "with --date 2024-01-15")
    if day is None:
        assert found is not None
        try:
            day = date(int(found[1]), int(found[2]), int(found[3]))
        except ValueError:
            raise ExportError(path, 1, f"the date in the file name is not a day: {found[0]}; "
                              "give the log's day with --date") from None
    name = group_name or memotrace_group_name(path)
    chat_id = f"irc:{name}"
    last = datetime.combine(day, time(0, 0), tzinfo=UTC)
    seen = Occurrences()
    for line_no, raw in enumerate(fh, 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        m = IRC_MESSAGE.match(line) or IRC_ACTION.match(line)
        if m:
            last = datetime.combine(day, time(int(m[1]) % 24, int(m[2]), int(m[3] or 0)),
                                    tzinfo=UTC)
            sender, text = m[4].strip(), m[5]
            mtype = "text" if m.re is IRC_MESSAGE else "action"
        else:
            s = IRC_SYSTEM.match(line)
            if not s:
                yield RowError(line_no, f"not an IRC log line: {line[:60]!r}")
                continue
            if s[1]:
                last = datetime.combine(day, time(int(s[1]) % 24, int(s[2]), int(s[3] or 0)),
                                        tzinfo=UTC)
            body = s[4]
            if IRC_JOIN.match(body) or IRC_LEAVE.match(body) or IRC_NICK.match(body):
                sender, text, mtype = "", body, "system"
            else:  # "/me" action: "=== nick does something"
                sender, _, rest = body.partition(" ")
                text, mtype = rest, "action"
        base = content_key(chat_id, last.isoformat(), sender, text)
        yield ExportRow(line=line_no, chat_id=chat_id, chat_name=name, at=last,
                        sender_id=sender, sender_name=sender, text=text, message_type=mtype,
                        key=seen.key(last, base))


# Exports from Chinese clients that write local times without a zone.
CHINA = ZoneInfo("Asia/Shanghai")


def _local_or_unix(value: str) -> datetime | str:
    """A unix time, an ISO time with zone, or a local China time; else the reason."""
    value = value.strip()
    if re.fullmatch(r"\d{9,11}(\.\d+)?", value):
        return datetime.fromtimestamp(float(value), tz=UTC)
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00").replace("/", "-"))
    except ValueError:
        return f"not a time: {value!r}"
    return (at.replace(tzinfo=CHINA) if at.tzinfo is None else at).astimezone(UTC)


# --- PyWxDump CSV ---------------------------------------------------------------------------
PYWXDUMP_COLUMNS = ("id", "MsgSvrID", "type_name", "is_sender", "talker", "room_name", "msg",
                    "src", "CreateTime")
_PYWX_TYPES = (("系统", "system"), ("撤回", "system"), ("拍一拍", "system"), ("邀请", "system"),
               ("群公告", "announcement"), ("图片", "image"), ("语音", "voice"),
               ("视频", "video"), ("表情", "sticker"), ("文件", "file"), ("链接", "link"),
               ("引用", "quote"), ("转账", "transfer"), ("红包", "red_packet"),
               ("位置", "location"), ("名片", "card"), ("文本", "text"))


def _pywx_type(name: str) -> str:
    for needle, kind in _PYWX_TYPES:
        if needle in name:
            return kind
    return name or "text"


def _dict_rows(path: Path, fh: TextIO, required: tuple[str, ...],
               what: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) pairs of a CSV with a header, after checking its required columns."""
    reader = csv.DictReader(fh)
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise ExportError(path, 1, f"not a {what}: missing columns {missing}")
    for row in reader:
        yield reader.line_num, row


def read_pywxdump(path: Path, fh: TextIO, group_name: str | None,
        day: date | None = None) -> Iterator[Row]:
    """PyWxDump's CSV export. ``type_name`` wording is matched by keyword (系统/撤回/图片…);
    unknown names are kept as the message type."""
    seen = Occurrences()
    for line, row in _dict_rows(path, fh, ("type_name", "talker", "msg", "CreateTime"),
                                "PyWxDump CSV"):
        at = _local_or_unix(row.get("CreateTime") or "")
        if isinstance(at, str):
            yield RowError(line, f"CreateTime: {at}")
            continue
        room = (row.get("room_name") or "").strip() or group_name or memotrace_group_name(path)
        mtype = _pywx_type((row.get("type_name") or "").strip())
        sender = "" if mtype == "system" else (row.get("talker") or "").strip()
        key = (row.get("MsgSvrID") or "").strip()
        if not key:
            key = seen.key(at, content_key(room, at.timestamp(), sender, row.get("msg")))
        yield ExportRow(line=line, chat_id=room, chat_name=group_name or room, at=at,
                        sender_id=sender, sender_name=sender, text=row.get("msg") or "",
                        message_type=mtype, key=key,
                        is_self=(row.get("is_sender") or "").strip() == "1")


# --- chatlog CSV ---------------------------------------------------------------------------
def read_chatlog_csv(path: Path, fh: TextIO, group_name: str | None,
        day: date | None = None) -> Iterator[Row]:
    """chatlog's CSV (``Time, SenderName, Sender, TalkerName, Talker, Content``). It has no
    type column: a row without a sender whose text reads as a group notice is a notice."""
    seen = Occurrences()
    for line, row in _dict_rows(path, fh, ("Time", "Talker", "Content"), "chatlog CSV"):
        at = _local_or_unix(row.get("Time") or "")
        if isinstance(at, str):
            yield RowError(line, f"Time: {at}")
            continue
        talker = (row.get("Talker") or "").strip()
        sender = (row.get("Sender") or "").strip()
        text = row.get("Content") or ""
        system = not sender and parse_notice(text) is not None
        base = content_key(talker, at.timestamp(), sender, text)
        yield ExportRow(line=line, chat_id=talker,
                        chat_name=group_name or (row.get("TalkerName") or talker).strip(),
                        at=at, sender_id=sender,
                        sender_name=(row.get("SenderName") or sender).strip(), text=text,
                        message_type="system" if system else "text",
                        key=seen.key(at, base))


# --- QQ message manager TXT ------------------------------------------------------------------
QQ_HEADER = re.compile(
    r"^(\d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{2}:\d{2}) (.*?)(?:\((\d+)\)|<([^>]*)>)\s*$")
QQ_SYSTEM_IDS = {"10000", "1000000", "80000000"}


def read_qq_txt(path: Path, fh: TextIO, group_name: str | None,
        day: date | None = None) -> Iterator[Row]:
    """QQ message manager export: a preamble with ``消息对象:群名``, then blocks of a header
    line ``2019-01-01 12:00:00 昵称(123456)`` and the message lines below it (local time)."""
    name = group_name
    current: tuple[int, datetime, str, str] | None = None
    body: list[str] = []
    seen = Occurrences()

    def emit() -> Iterator[Row]:
        if current is None:
            return
        line, at, sender_name, qq = current
        text = "\n".join(body).strip()
        chat = f"qq:{name or memotrace_group_name(path)}"
        system = qq in QQ_SYSTEM_IDS
        base = content_key(chat, at.timestamp(), qq, text)
        yield ExportRow(line=line, chat_id=chat, chat_name=name or memotrace_group_name(path),
                        at=at, sender_id="" if system else qq,
                        sender_name="" if system else sender_name.strip(), text=text,
                        message_type="system" if system else ("image" if text == "[图片]"
                                                              else "text"),
                        key=seen.key(at, base))

    for line_no, raw in enumerate(fh, 1):
        line = raw.rstrip("\r\n")
        if name is None and line.startswith("消息对象:"):
            name = line.split(":", 1)[1].strip()
            continue
        header = QQ_HEADER.match(line)
        if header:
            yield from emit()
            at = datetime.strptime(header[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
            current = (line_no, at.astimezone(UTC), header[2], header[3] or header[4] or "")
            body = []
        elif current is not None:
            body.append(line)
    yield from emit()


READERS = {
    "memotrace": read_memotrace,
    "chatlog-json": read_chatlog_json,
    "telegram": read_telegram,
    "irc": read_irc,
    "pywxdump": read_pywxdump,
    "chatlog-csv": read_chatlog_csv,
    "qq-txt": read_qq_txt,
}


def detect_format(path: Path) -> str:
    """Guess from the first bytes; raises ExportError naming the file when nothing fits."""
    with path.open(encoding="utf-8-sig", errors="replace") as fh:
        head = fh.read(4096)
    stripped = head.lstrip()
    first_line = stripped.splitlines()[0] if stripped else ""
    if first_line.startswith("localId") or ("TalkerId" in first_line
                                            and "StrContent" in first_line):
        return "memotrace"
    if stripped.startswith("{") and '"messages"' in head:
        return "telegram"
    if stripped.startswith(("[", "{")) and '"talker"' in head:
        return "chatlog-json"
    if IRC_MESSAGE.match(first_line) or IRC_SYSTEM.match(first_line):
        return "irc"
    if "type_name" in first_line and "talker" in first_line:
        return "pywxdump"
    if first_line.startswith("Time,") and "Talker" in first_line:
        return "chatlog-csv"
    if "消息记录" in head[:200] or any(QQ_HEADER.match(x) for x in head.splitlines()[:40]):
        return "qq-txt"
    raise ExportError(path, 1, "unknown export format; pass --format "
                      f"({', '.join(sorted(READERS))})")
