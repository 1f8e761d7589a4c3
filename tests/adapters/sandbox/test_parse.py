"""Every recorded sandbox fixture parses to the event its name promises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qunyun.adapters.platforms.sandbox import parse as sandbox_parse
from qunyun.adapters.platforms.sandbox.parse import SandboxParseError
from qunyun.domain.events import JoinScene, LeaveScene, MemberJoined, MemberLeft

FIXTURES = Path(sandbox_parse.__file__).parent / "fixtures"
EXPECTED = {
    "join": "MemberJoined", "leave": "MemberLeft", "message": "MessagePosted",
    "recall": "MessageRecalled", "rename": "GroupRenamed", "group": "GroupUpdated",
}


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.stem)
def test_fixture_parses(path: Path) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw_type = path.stem.split("__")[0]
    result = sandbox_parse.parse(raw)
    if raw_type in EXPECTED:
        assert [e.kind for e in result.events] == [EXPECTED[raw_type]]
        assert result.events[0].occurred_at.tzinfo is not None
        assert not result.skipped
    else:
        assert result.events == [] and result.skipped == {raw_type: 1}


def test_join_details_and_leave_scenes() -> None:
    join = sandbox_parse.parse(json.loads((FIXTURES / "join__invite.json").read_text()))
    [event] = join.events
    assert isinstance(event, MemberJoined)
    assert event.scene is JoinScene.INVITE and event.channel == "poster-a"
    assert event.inviter is not None and event.inviter.external_id == "u0"
    removed = sandbox_parse.parse(json.loads((FIXTURES / "leave__removed.json").read_text()))
    left = sandbox_parse.parse(json.loads((FIXTURES / "leave__self.json").read_text()))
    assert isinstance(removed.events[0], MemberLeft) and isinstance(left.events[0], MemberLeft)
    assert removed.events[0].scene is LeaveScene.REMOVED
    assert left.events[0].scene is LeaveScene.LEFT


@pytest.mark.parametrize(("raw", "needle"), [
    ({"type": "join", "id": "x", "at": "2026-11-20T12:00:00Z", "chat": "g1"}, "'user'"),
    ({"type": "join", "at": "2026-11-20T12:00:00Z", "chat": "g1", "user": "u"}, "'id'"),
    ({"type": "message", "id": "x", "at": "yesterday", "chat": "g", "user": "u",
      "message_id": "m"}, "'at' is not an ISO time"),
    ({"type": "message", "id": "x", "at": "2026-11-20T12:00:00", "chat": "g", "user": "u",
      "message_id": "m"}, "no time zone"),
    ({"type": "join", "id": "x", "at": "2026-11-20T12:00:00Z", "chat": "g", "user": "u",
      "scene": "teleport"}, "'scene'"),
])
def test_malformed_payload_names_the_field(raw: dict[str, str], needle: str) -> None:
    with pytest.raises(SandboxParseError, match=needle):
        sandbox_parse.parse(raw)
