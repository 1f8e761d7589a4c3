"""Kinds of member history (``member_events.kind``) that several modules name.

Notices a platform reports (pats, recalls, red packets …) keep their own kind strings; the
kinds below are the ones code decides on or filters by."""

from __future__ import annotations

from enum import StrEnum

from qunyun.domain.events import LeaveScene, MemberLeft


class MemberEventKind(StrEnum):
    JOINED = "joined"
    LEFT = "left"
    REMOVED = "removed"
    LEFT_SNAPSHOT = "left_snapshot"  # absent from a member list taken at a known time
    GROUP_RENAMED = "group_renamed"
    CHECKIN = "checkin"
    ENROLLED = "enrolled"
    AD_FLAGGED = "ad_flagged"
    VIOLATION = "violation"
    BLACKLISTED = "blacklisted"
    UNBLACKLISTED = "unblacklisted"


def leave_kind(event: MemberLeft) -> MemberEventKind:
    """The history kind of a leave: removed by someone, seen missing from a member list, or
    left (the live path and the chat-export path both record leaves)."""
    if event.scene == LeaveScene.REMOVED:
        return MemberEventKind.REMOVED
    return MemberEventKind.LEFT_SNAPSHOT if event.basis == "snapshot" else MemberEventKind.LEFT


# a membership ended: by the member, by an admin, or seen missing from a snapshot
LEAVE_KINDS = (MemberEventKind.LEFT, MemberEventKind.REMOVED, MemberEventKind.LEFT_SNAPSHOT)
