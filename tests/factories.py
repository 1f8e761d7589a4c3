"""Raw sandbox payloads for tests (the same shape the simulator and fixtures use)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from qunyun.adapters.platforms.sandbox import parse as sandbox_parse
from qunyun.domain.events import DomainEvent

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def at(minutes: float = 0) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def raw_join(eid: str, chat: str, user: str, *, minutes: float = 0, name: str = "",
             inviter: str | None = None, scene: str = "invite",
             channel: str = "") -> dict[str, Any]:
    raw: dict[str, Any] = {"type": "join", "id": eid, "at": at(minutes), "chat": chat,
                           "chat_name": f"群{chat}", "user": user, "user_name": name or user,
                           "scene": scene, "channel": channel}
    if inviter:
        raw["inviter"] = inviter
    return raw


def raw_message(eid: str, chat: str, user: str, text: str, *, minutes: float = 0,
                message_id: str | None = None, name: str = "") -> dict[str, Any]:
    return {"type": "message", "id": eid, "at": at(minutes), "chat": chat, "user": user,
            "user_name": name, "message_id": message_id or eid, "text": text}


def raw_leave(eid: str, chat: str, user: str, *, minutes: float = 0,
              by: str | None = None) -> dict[str, Any]:
    raw: dict[str, Any] = {"type": "leave", "id": eid, "at": at(minutes), "chat": chat,
                           "user": user}
    if by:
        raw["by"] = by
    return raw


def event(raw: dict[str, Any]) -> DomainEvent:
    result = sandbox_parse.parse(raw)
    assert len(result.events) == 1, result
    return result.events[0]
