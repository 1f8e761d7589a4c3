from __future__ import annotations

import pytest

from qunyun.domain.actions import RemoveMember, SendText, action_from_payload


def test_payload_round_trip() -> None:
    for action in (SendText(group_id=3, text="欢迎", mention_member_ids=(1, 2)),
                   RemoveMember(group_id=3, member_id=9, reason="广告")):
        assert action_from_payload(action.type_name, action.to_payload()) == action


def test_unknown_type_and_fields_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown action type"):
        action_from_payload("teleport", {})
    with pytest.raises(ValueError, match="unknown fields"):
        action_from_payload("send_text", {"group_id": 1, "text": "x", "colour": "red"})
