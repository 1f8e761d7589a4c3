"""Memberships: the one writer of ``memberships`` — who is in which group from when to when,
how they came (scene, channel, inviter) and their first and last message there.

A live event (through ingest), a chat export's batches (``import_history``), a member
list (rosters) and a speaker nobody saw join each open, close or widen memberships here.
The statements every live event runs are built once (building one cost more than running
it on SQLite); values go in as parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, or_, select, update

from qunyun.adapters.storage.sql import bulk_insert_ignore
from qunyun.adapters.storage.tables import UTCDateTime, member_events, memberships
from qunyun.domain.history import LEAVE_KINDS

_NEW = memberships.insert()
_OPEN = (select(memberships.c.id).where(
    memberships.c.member_id == bindparam("m"), memberships.c.group_id == bindparam("g"),
    memberships.c.left_at.is_(None)).order_by(memberships.c.id.desc()).limit(1))
_LATER_LEAVE = select(func.min(member_events.c.occurred_at)).where(
    member_events.c.member_id == bindparam("m"), member_events.c.group_id == bindparam("g"),
    member_events.c.kind.in_(LEAVE_KINDS),
    member_events.c.occurred_at > bindparam("at", type_=UTCDateTime()))
_JOIN_COUNT = select(func.count()).select_from(memberships).where(
    memberships.c.member_id == bindparam("m"), memberships.c.group_id == bindparam("g"),
    memberships.c.join_observed.is_(True))
_CLOSE = update(memberships).where(
    memberships.c.member_id == bindparam("m"), memberships.c.group_id == bindparam("g"),
    memberships.c.left_at.is_(None),
).values(left_at=bindparam("at", type_=UTCDateTime()), leave_scene=bindparam("scene"))
# a batch row, in this order
COLUMNS = ("member_id", "group_id", "joined_at", "join_scene", "inviter_member_id", "channel",
           "join_observed", "left_at", "leave_scene", "first_message_at", "last_message_at")


def _widen_message_times() -> Any:
    fm, lm = memberships.c.first_message_at, memberships.c.last_message_at
    # typed, so SQLite gets the same text form as every other stored time
    first = bindparam("t_first", type_=UTCDateTime())
    last = bindparam("t_last", type_=UTCDateTime())
    # messages from before the open membership began belong to an earlier one (a file
    # imported again after the member left and came back): they do not widen this one
    return update(memberships).where(
        memberships.c.member_id == bindparam("t_member"),
        memberships.c.group_id == bindparam("t_group"), memberships.c.left_at.is_(None),
        memberships.c.joined_at <= last,
    ).values(first_message_at=case((or_(fm.is_(None), fm > first), first), else_=fm),
             last_message_at=case((or_(lm.is_(None), lm < last), last), else_=lm))


_WIDEN_MESSAGE_TIMES = _widen_message_times()


# --- reads the writers decide on -----------------------------------------------------------

def open_id(conn: Connection, member_id: int, group_id: int) -> int | None:
    """The member's open membership of the group, if any."""
    return conn.execute(_OPEN, {"m": member_id, "g": group_id}).scalar()


def later_leave(conn: Connection, member_id: int, group_id: int,
                at: datetime) -> datetime | None:
    """The earliest leave of this member from this group recorded after ``at``, if any."""
    return conn.execute(_LATER_LEAVE, {"m": member_id, "g": group_id, "at": at}).scalar()


def joins_between(conn: Connection, group_id: int, start: datetime, end: datetime) -> int:
    """Joins to a group seen in (start, end] (how fast newcomers are arriving)."""
    return int(conn.execute(select(func.count()).select_from(memberships).where(
        memberships.c.group_id == group_id, memberships.c.join_observed.is_(True),
        memberships.c.joined_at > start, memberships.c.joined_at <= end)).scalar_one())


def join_count(conn: Connection, member_id: int, group_id: int) -> int:
    """How many joins of this member to this group were seen (not implied)."""
    return int(conn.execute(_JOIN_COUNT, {"m": member_id, "g": group_id}).scalar_one())


# --- one at a time -------------------------------------------------------------------------

def add_joined(conn: Connection, *, member_id: int, group_id: int, at: datetime, scene: str,
               channel: str, inviter_id: int | None, left_at: datetime | None) -> None:
    """A join we saw; ``left_at`` when its own leave arrived first (callbacks out of
    order), so the membership is already over."""
    conn.execute(_NEW, {"member_id": member_id, "group_id": group_id, "joined_at": at,
                        "join_scene": scene, "channel": channel, "join_observed": True,
                        "inviter_member_id": inviter_id, "left_at": left_at})


def add_implied(conn: Connection, *, member_id: int, group_id: int, at: datetime) -> None:
    """A membership we did not see begin (someone spoke, or was on a member list): it starts
    at ``at`` and is marked ``join_observed=False`` so analytics can tell it apart."""
    conn.execute(_NEW, {"member_id": member_id, "group_id": group_id, "joined_at": at,
                        "join_scene": "unknown", "channel": "", "join_observed": False})


def close(conn: Connection, *, member_id: int, group_id: int, at: datetime,
          scene: str) -> None:
    """The member's open membership of the group ends at ``at``."""
    conn.execute(_CLOSE, {"m": member_id, "g": group_id, "at": at, "scene": scene})


def fill_in(conn: Connection, membership_id: int, values: Mapping[str, Any]) -> None:
    """What a member list knows better (channel, scene, inviter) on a stored membership."""
    conn.execute(update(memberships).where(memberships.c.id == membership_id)
                 .values(**values))


def note_message_times_many(conn: Connection,
                            spans: Mapping[tuple[int, int], tuple[datetime, datetime]]) -> None:
    """Widen open memberships' first/last message times: {(member, group): (first, last)}."""
    if spans:
        conn.execute(_WIDEN_MESSAGE_TIMES, [
            {"t_member": m, "t_group": g, "t_first": first, "t_last": last}
            for (m, g), (first, last) in spans.items()])


def note_message_times(conn: Connection, *, member_id: int, group_id: int, first: datetime,
                       last: datetime) -> None:
    """Widen the open membership's first/last message times to include [first, last]."""
    note_message_times_many(conn, {(member_id, group_id): (first, last)})


# --- in bulk (a chat export's history) ------------------------------------------------------

def add_many(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Memberships in ``COLUMNS`` order, in one bulk write."""
    bulk_insert_ignore(conn, memberships, COLUMNS, rows, ["id"])


def update_many(conn: Connection, changes: Iterable[Mapping[str, Any]]) -> None:
    """Stored memberships closed or widened by a file: dicts of id, left_at, leave_scene,
    first_message_at, last_message_at."""
    rows = [{"m_id": c["id"], "m_left": c["left_at"], "m_scene": c["leave_scene"],
             "m_first": c["first_message_at"], "m_last": c["last_message_at"]}
            for c in changes]
    if rows:
        conn.execute(
            update(memberships).where(memberships.c.id == bindparam("m_id")).values(
                left_at=bindparam("m_left"), leave_scene=bindparam("m_scene"),
                first_message_at=bindparam("m_first"), last_message_at=bindparam("m_last")),
            rows)
