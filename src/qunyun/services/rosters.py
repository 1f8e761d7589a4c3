"""Reconcile a group with the platform's own member list (a :class:`Roster`).

Callbacks can arrive out of order or be lost (WeCom says so), and some only say "something
changed". A roster read from the platform is the truth they are checked against: people
listed but not in the group here get the join the platform reports (with its time, scene,
inviter and channel); people in the group here but not listed get a leave marked
``basis="snapshot"``; a channel or scene learnt late is filled in. Joins found this way run no
rules: the first sync of a 500-person group must not greet 500 people.

The platform's list can lag a change by a moment (WeCom: "some data is processed
asynchronously"), so a leave recorded after the listed join time wins over the list, and
people who joined within ``settle`` of the reading are not declared gone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import groups, identities, member_events, memberships
from qunyun.domain.events import (
    GroupRenamed,
    GroupUpdated,
    LeaveScene,
    MemberJoined,
    MemberLeft,
    PersonRef,
)
from qunyun.domain.groups import Roster
from qunyun.domain.history import LEAVE_KINDS
from qunyun.services import memberships as memberships_service
from qunyun.services.ingest import NO_RULES, do_ingest_event
from qunyun.services.members import resolve_member

LEAVES = LEAVE_KINDS


@dataclass
class RosterChanges:
    listed: int = 0
    joined: int = 0
    left: int = 0
    channels: int = 0
    renamed: bool = False

    def add(self, other: RosterChanges) -> None:
        self.listed += other.listed
        self.joined += other.joined
        self.left += other.left
        self.channels += other.channels

    def any(self) -> bool:
        return bool(self.joined or self.left or self.channels or self.renamed)


def apply_roster(conn: Connection, *, platform: str, roster: Roster,
                 settle: timedelta = timedelta(seconds=60)) -> RosterChanges:
    """Bring one group in line with ``roster`` in the caller's transaction."""
    at = roster.taken_at
    chat = roster.chat
    out = RosterChanges(listed=len(roster.members))
    stored = conn.execute(select(groups.c.id, groups.c.name).where(
        groups.c.platform == platform, groups.c.external_id == chat.external_id)).first()
    fingerprint = hashlib.sha1("|".join([
        chat.name, roster.owner.external_id if roster.owner else "",
        roster.announcement or ""]).encode()).hexdigest()[:16]
    if stored is not None and stored.name and chat.name and stored.name != chat.name:
        do_ingest_event(conn, GroupRenamed(
            platform=platform, external_event_id=f"roster:{chat.external_id}:name:{fingerprint}",
            occurred_at=at, chat=chat, new_name=chat.name), config=NO_RULES, received_at=at)
        out.renamed = True
    gid = do_ingest_event(conn, GroupUpdated(
        platform=platform, external_event_id=f"roster:{chat.external_id}:group:{fingerprint}",
        occurred_at=at, chat=chat, owner=roster.owner, announcement=roster.announcement),
        config=NO_RULES, received_at=at).group_id
    if gid is None:  # the same details were applied before
        gid = int(conn.execute(select(groups.c.id).where(
            groups.c.platform == platform, groups.c.external_id == chat.external_id))
            .scalar_one())

    open_rows = {int(r.member_id): r for r in conn.execute(
        select(memberships.c.id, memberships.c.member_id, memberships.c.channel,
               memberships.c.join_scene, memberships.c.joined_at, memberships.c.inviter_member_id)
        .where(memberships.c.group_id == gid, memberships.c.left_at.is_(None)))}
    listed: set[int] = set()
    for item in roster.members:
        member = resolve_member(conn, platform=platform, ref=item.person, at=at)
        listed.add(member.id)
        row = open_rows.get(member.id)
        if row is not None:
            values: dict[str, object] = {}
            if item.channel and not row.channel:
                values["channel"] = item.channel
                out.channels += 1
            if row.join_scene == "unknown" and item.scene != "unknown":
                values["join_scene"] = item.scene.value
            if item.inviter is not None and row.inviter_member_id is None:
                values["inviter_member_id"] = resolve_member(
                    conn, platform=platform, ref=item.inviter, at=at).id
            if values:
                memberships_service.fill_in(conn, row.id, values)
            continue
        joined_at = item.joined_at or at
        left_since = conn.execute(select(member_events.c.id).where(
            member_events.c.member_id == member.id, member_events.c.group_id == gid,
            member_events.c.kind.in_(LEAVES), member_events.c.occurred_at >= joined_at)
            .limit(1)).first()
        if left_since is not None:
            continue  # the list is older than the leave we saw
        result = do_ingest_event(conn, MemberJoined(
            platform=platform, occurred_at=joined_at, chat=chat, member=item.person,
            external_event_id=f"roster:{chat.external_id}:join:{item.person.external_id}:"
                              f"{int(joined_at.timestamp())}",
            inviter=item.inviter, scene=item.scene, channel=item.channel),
            config=NO_RULES, received_at=at)
        out.joined += not result.duplicate

    for member_id, row in open_rows.items():
        if member_id in listed or row.joined_at > at - settle:
            continue
        ident = conn.execute(select(identities.c.kind, identities.c.external_id).where(
            identities.c.member_id == member_id, identities.c.platform == platform)
            .order_by(identities.c.weak, identities.c.id)).first()
        if ident is None:
            continue
        result = do_ingest_event(conn, MemberLeft(
            platform=platform, occurred_at=at, chat=chat,
            external_event_id=f"roster:{chat.external_id}:leave:{member_id}:{at.isoformat()}",
            member=PersonRef(external_id=ident.external_id, kind=ident.kind),
            scene=LeaveScene.UNKNOWN, basis="snapshot"), config=NO_RULES, received_at=at)
        out.left += not result.duplicate
    return out
