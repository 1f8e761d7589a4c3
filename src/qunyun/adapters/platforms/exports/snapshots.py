"""Member-list snapshots: who was in a group at one moment. Pure readers, no database.

- ``chatroom-json``: sjzar/chatlog ``/api/v1/chatroom`` objects
  ``{name, nickName, owner, users: [{userName, displayName}]}`` (one object or a list).
- ``members-csv``: a header row with ``chat_id`` and ``user_id`` and/or ``name`` columns
  (optional ``chat_name``); a row without ``user_id`` is a nickname-only member.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from qunyun.adapters.platforms.exports.formats import ExportError

SNAPSHOT_FORMATS = ("chatroom-json", "members-csv")


@dataclass
class Snapshot:
    chat_id: str
    chat_name: str = ""
    people: list[tuple[str, str]] = field(default_factory=list)  # (user id or "", name)


def detect_snapshot_format(path: Path) -> str:
    head = path.read_text(encoding="utf-8-sig", errors="replace")[:2048].lstrip()
    if head.startswith(("{", "[")) and '"users"' in head:
        return "chatroom-json"
    if "chat_id" in (head.splitlines() or [""])[0]:
        return "members-csv"
    raise ExportError(path, 1, "unknown snapshot format; pass --format "
                      f"({', '.join(SNAPSHOT_FORMATS)})")


def read_snapshots(path: Path, fmt: str) -> list[Snapshot]:
    text = path.read_text(encoding="utf-8-sig")
    if fmt == "chatroom-json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ExportError(path, exc.lineno, f"invalid JSON: {exc.msg}") from None
        rooms = data if isinstance(data, list) else [data]
        out = []
        for i, room in enumerate(rooms, 1):
            if not isinstance(room, dict) or not room.get("name") or not isinstance(
                    room.get("users"), list):
                raise ExportError(path, i, "a chatroom needs 'name' and a 'users' list")
            snap = Snapshot(chat_id=str(room["name"]), chat_name=str(room.get("nickName") or
                                                                     room.get("remark") or ""))
            for user in room["users"]:
                uid = str(user.get("userName") or "") if isinstance(user, dict) else ""
                if not uid:
                    raise ExportError(path, i, "a user lacks 'userName'")
                snap.people.append((uid, str(user.get("displayName") or "")))
            out.append(snap)
        return out
    if fmt == "members-csv":
        reader = csv.DictReader(text.splitlines())
        fields = set(reader.fieldnames or [])
        if "chat_id" not in fields or not fields & {"user_id", "name"}:
            raise ExportError(path, 1, "members CSV needs chat_id and user_id or name columns")
        by_chat: dict[str, Snapshot] = {}
        for row in reader:
            line = reader.line_num
            chat = (row.get("chat_id") or "").strip()
            uid, name = (row.get("user_id") or "").strip(), (row.get("name") or "").strip()
            if not chat or not (uid or name):
                raise ExportError(path, line, "a row needs chat_id and user_id or name")
            snap = by_chat.setdefault(chat, Snapshot(chat_id=chat,
                                                     chat_name=(row.get("chat_name") or "")))
            snap.people.append((uid, name))
        return list(by_chat.values())
    raise ExportError(path, 0, f"unknown snapshot format {fmt!r}")
