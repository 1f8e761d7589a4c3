"""Kinds of member history (``member_events.kind``) that several modules name.

Notices a platform reports (pats, recalls, red packets …) keep their own kind strings; the
kinds below are the ones code decides on or filters by."""

from __future__ import annotations

from enum import StrEnum


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


# a membership ended: by the member, by an admin, or seen missing from a snapshot
LEAVE_KINDS = (MemberEventKind.LEFT, MemberEventKind.REMOVED, MemberEventKind.LEFT_SNAPSHOT)
