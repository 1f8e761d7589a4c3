"""The entry gate's pending queue (F9): requests to join a group whose admins approve
newcomers, the applicants' answers, and every decision — the gate's, a person's, a timeout.

The one writer of ``join_requests``. A request is recorded when it arrives
(``note_request``, by ingest), its answers when the applicant writes to the bot in private
(``note_answer``), and the gate's decision by the rule's ``SettleJoinRequest`` effect
(``settle``). People decide open requests (``do_decide``, ``do_ask``); a request nobody
answered within the group's ``timeout_hours`` is turned down (``expire_due``, the worker).
Answers to the platform (approve, decline) and messages to the applicant go through the
outbox like every other action, so a platform that cannot answer a request makes a task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update

from qunyun.adapters.storage.tables import (
    blacklist,
    enrolments,
    groups,
    join_requests,
    members,
    memberships,
)
from qunyun.domain.actions import (
    Action,
    AnswerJoinRequest,
    CapabilityLookup,
    SendPrivate,
)
from qunyun.domain.staff import Permission
from qunyun.engine.rules.entry import decline_message
from qunyun.services import audit, automation, history, outbox
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.members import shown_name
from qunyun.services.users import SYSTEM, Actor, username_of

OPEN = ("pending", "asked", "answered")
CLOSED = ("approved", "declined", "expired")
STATUSES = OPEN + CLOSED
JOIN_REQUESTED = "join_requested"
TIMED_OUT = "超时未处理"
MAX_ANSWERS = 20  # an applicant who writes on and on: the first answers are what counts
MAX_ANSWER = 2000


@dataclass(frozen=True, slots=True)
class OpenRequest:
    id: int
    group_id: int
    status: str
    repeat: bool = False  # the person asked again while their request was open


# --- recorded by ingest --------------------------------------------------------------------


def note_request(conn: Connection, *, group_id: int, member_id: int, at: datetime,
                 channel: str = "", bio: str = "", inbound_id: int | None = None
                 ) -> OpenRequest:
    """A request arrived: a new open request, or the one already open for this person and
    group (asking again does not queue them twice)."""
    row = conn.execute(select(join_requests.c.id, join_requests.c.status).where(
        join_requests.c.group_id == group_id, join_requests.c.member_id == member_id,
        join_requests.c.status.in_(OPEN)).order_by(join_requests.c.id.desc()).limit(1)).first()
    if row is not None:
        conn.execute(update(join_requests).where(join_requests.c.id == row.id).values(
            channel=channel[:128] or join_requests.c.channel, updated_at=at))
        return OpenRequest(int(row.id), group_id, str(row.status), repeat=True)
    request_id = int(conn.execute(join_requests.insert().values(
        group_id=group_id, member_id=member_id, status="pending", channel=channel[:128],
        bio=bio[:1000], answers=[], requested_at=at, decided_by="", reason="",
        updated_at=at).returning(join_requests.c.id)).scalar_one())
    history.append(conn, kind=JOIN_REQUESTED, member_id=member_id, group_id=group_id, at=at,
                   data={"channel": channel[:128]}, inbound_id=inbound_id)
    return OpenRequest(request_id, group_id, "pending")


def note_answer(conn: Connection, *, member_id: int, text: str, at: datetime
                ) -> OpenRequest | None:
    """A private message from someone the gate asked: kept as an answer on their latest
    asked request (a bot command such as ``/start`` is not an answer). None when nobody
    asked them anything."""
    words = text.strip()
    if not words or words.startswith("/"):
        return None
    row = conn.execute(select(join_requests.c.id, join_requests.c.group_id,
                              join_requests.c.answers).where(
        join_requests.c.member_id == member_id,
        join_requests.c.status.in_(("asked", "answered")))
        .order_by(join_requests.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    answers = list(row.answers or [])
    if len(answers) < MAX_ANSWERS:
        answers.append({"at": at.isoformat(), "text": words[:MAX_ANSWER]})
    conn.execute(update(join_requests).where(join_requests.c.id == row.id).values(
        answers=answers, status="answered", updated_at=at))
    return OpenRequest(int(row.id), int(row.group_id), "answered")


# built once: every join runs it (a statement built per call costs as much as the join's
# member lookup)
_CLOSE_ON_JOIN = update(join_requests).where(
    join_requests.c.group_id == bindparam("g"), join_requests.c.member_id == bindparam("m"),
    join_requests.c.status.in_(OPEN)).values(
    status="approved", decided_at=bindparam("at"), decided_by="platform",
    updated_at=bindparam("at"))


def close_on_join(conn: Connection, *, group_id: int, member_id: int, at: datetime) -> None:
    """The applicant is in (an admin approved them in the app): their open request is
    settled as approved, so nobody decides it again and no timeout turns them down."""
    conn.execute(_CLOSE_ON_JOIN, {"g": group_id, "m": member_id, "at": at})


def settle(conn: Connection, *, group_id: int, member_id: int, status: str, reason: str,
           at: datetime, by: str = SYSTEM.label) -> int | None:
    """Record a decision on the person's open request in the group (the gate's effect and
    people's decisions both come here). Returns the request's id (None: none was open)."""
    if status not in STATUSES:
        raise InvalidInput("status: not a join request status: {status!r}", status=status)
    request_id = conn.execute(select(join_requests.c.id).where(
        join_requests.c.group_id == group_id, join_requests.c.member_id == member_id,
        join_requests.c.status.in_(OPEN)).order_by(join_requests.c.id.desc()).limit(1)
    ).scalar()
    if request_id is None:
        return None
    closed = status in CLOSED
    conn.execute(update(join_requests).where(join_requests.c.id == request_id).values(
        status=status, reason=reason[:500], updated_at=at,
        **({"decided_at": at, "decided_by": by[:128]} if closed else {})))
    if status in ("declined", "expired"):
        history.append(conn, kind="join_declined", member_id=member_id, group_id=group_id,
                       at=at, data={"reason": reason[:200]})
    return int(request_id)


def standing(conn: Connection, *, activity_id: int, member_id: int) -> tuple[bool, int]:
    """(enrolled, deposit in fen) in an activity: what an ``activity`` gate checks."""
    row = conn.execute(select(enrolments.c.deposit_fen).where(
        enrolments.c.activity_id == activity_id, enrolments.c.member_id == member_id,
        enrolments.c.status == "enrolled")).first()
    return (row is not None, int(row.deposit_fen or 0) if row is not None else 0)


# --- the queue -----------------------------------------------------------------------------


def _row(r: Any) -> dict[str, Any]:
    return {"id": int(r.id), "group_id": int(r.group_id), "group": r.group_name,
            "platform": r.platform, "member_id": int(r.member_id),
            "member": shown_name(r.display_name, r.number), "number": int(r.number),
            "status": r.status, "open": r.status in OPEN, "channel": r.channel,
            "bio": r.bio, "answers": list(r.answers or []), "requested_at": r.requested_at,
            "decided_at": r.decided_at, "decided_by": r.decided_by,
            "decided_by_name": (None if r.decided_by in ("", SYSTEM.label, "platform")
                                else username_of(r.decided_by)),
            "by_platform": r.decided_by == "platform", "reason": r.reason}


def _select() -> Any:
    return (select(join_requests, groups.c.name.label("group_name"), groups.c.platform,
                   members.c.display_name, members.c.number)
            .join(groups, groups.c.id == join_requests.c.group_id)
            .join(members, members.c.id == join_requests.c.member_id))


def list_requests(conn: Connection, *, actor: Actor, status: str = "open",
                  group_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Requests newest first: ``open`` (waiting for the gate or a person), ``closed``, a
    single status, or ``all``; each with the applicant's history (blacklisted now, groups
    they are in, activities they enrolled in) for the person deciding."""
    actor.require(Permission.VIEW)
    query = _select().order_by(join_requests.c.requested_at.desc(), join_requests.c.id.desc())
    if status == "open":
        query = query.where(join_requests.c.status.in_(OPEN))
    elif status == "closed":
        query = query.where(join_requests.c.status.in_(CLOSED))
    elif status in STATUSES:
        query = query.where(join_requests.c.status == status)
    elif status != "all":
        raise InvalidInput("status: one of open, closed, all or {statuses}, not {status!r}",
                           statuses=", ".join(STATUSES), status=status)
    if group_id is not None:
        query = query.where(join_requests.c.group_id == group_id)
    rows = [_row(r) for r in conn.execute(query.limit(max(1, min(limit, 1000))))]
    _add_history(conn, rows)
    return rows


def _add_history(conn: Connection, rows: list[dict[str, Any]]) -> None:
    ids = sorted({r["member_id"] for r in rows})
    if not ids:
        return
    barred = dict(conn.execute(select(blacklist.c.member_id, blacklist.c.reason).where(
        blacklist.c.member_id.in_(ids), blacklist.c.lifted_at.is_(None))).all())
    in_groups: dict[int, int] = dict(conn.execute(
        select(memberships.c.member_id, func.count()).where(
            memberships.c.member_id.in_(ids), memberships.c.left_at.is_(None))
        .group_by(memberships.c.member_id)).all())
    activities: dict[int, int] = dict(conn.execute(
        select(enrolments.c.member_id, func.count()).where(
            enrolments.c.member_id.in_(ids), enrolments.c.status == "enrolled")
        .group_by(enrolments.c.member_id)).all())
    for r in rows:
        r["blacklisted"] = r["member_id"] in barred
        r["blacklist_reason"] = barred.get(r["member_id"], "")
        r["groups_in"] = int(in_groups.get(r["member_id"], 0))
        r["activities"] = int(activities.get(r["member_id"], 0))


def access_request_by_id(conn: Connection, *, actor: Actor, request_id: int
                         ) -> dict[str, Any]:
    actor.require(Permission.VIEW)
    row = conn.execute(_select().where(join_requests.c.id == request_id)).first()
    if row is None:
        raise NotFound("join request {request_id} not found", request_id=request_id)
    out = _row(row)
    _add_history(conn, [out])
    return out


def count_open(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(join_requests)
                            .where(join_requests.c.status.in_(OPEN))).scalar_one())


# --- people decide -------------------------------------------------------------------------


def _enqueue(conn: Connection, request: dict[str, Any], actions: Sequence[Action], *,
             capabilities: CapabilityLookup, key: str, now: datetime) -> list[int]:
    return outbox.enqueue(conn, platform=request["platform"],
                          actions=[("entry_gate", a) for a in actions],
                          capabilities=capabilities(request["platform"]),
                          key_prefix=key, now=now)


def do_decide(conn: Connection, *, actor: Actor, request_id: int, approve: bool,
              reason: str = "", tell: bool = True, capabilities: CapabilityLookup,
              now: datetime) -> dict[str, Any]:
    """A person lets the applicant in or turns them down (``tell``: the group's decline
    text, with ``reason``, goes to them privately). Only an open request can be decided."""
    actor.require(Permission.OPERATE)
    request = access_request_by_id(conn, actor=actor, request_id=request_id)
    if not request["open"]:
        raise Conflict("join request {request_id} was already decided ({status})",
                       request_id=request_id, status=request["status"])
    reason = reason.strip()[:500]
    gid, mid = request["group_id"], request["member_id"]
    actions: list[Action] = []
    if not approve and tell:
        settings = automation.effective_settings(conn, gid).entry
        actions.append(SendPrivate(group_id=gid, member_id=mid, text=decline_message(
            settings, reason or "不符合本群的入群条件")))
    actions.append(AnswerJoinRequest(group_id=gid, member_id=mid, approve=approve,
                                     reason=reason))
    settle(conn, group_id=gid, member_id=mid, status="approved" if approve else "declined",
           reason=reason, at=now, by=actor.label)
    ids = _enqueue(conn, request, actions, capabilities=capabilities,
                   key=f"entry:{request_id}:decide", now=now)
    audit.record(conn, actor=actor.label, action="entry.approve" if approve
                 else "entry.decline", object_type="join_request", object_id=str(request_id),
                 detail={"group": gid, "member": mid, "reason": reason, "told": tell})
    return {**access_request_by_id(conn, actor=actor, request_id=request_id),
            "outbox_ids": ids}


def do_ask(conn: Connection, *, actor: Actor, request_id: int, text: str,
           capabilities: CapabilityLookup, now: datetime) -> dict[str, Any]:
    """A person asks the applicant something privately; their reply lands on the request."""
    actor.require(Permission.OPERATE)
    request = access_request_by_id(conn, actor=actor, request_id=request_id)
    if not request["open"]:
        raise Conflict("join request {request_id} was already decided ({status})",
                       request_id=request_id, status=request["status"])
    words = text.strip()
    if not words:
        raise InvalidInput("text: the question is empty")
    if len(words) > 1000:
        raise InvalidInput("text: at most {n} characters", n=1000)
    asked = len(conn.execute(select(join_requests.c.answers).where(
        join_requests.c.id == request_id)).scalar_one() or [])
    ids = _enqueue(conn, request, [SendPrivate(group_id=request["group_id"],
                                               member_id=request["member_id"], text=words)],
                   capabilities=capabilities,
                   key=f"entry:{request_id}:ask:{asked}:{int(now.timestamp())}", now=now)
    conn.execute(update(join_requests).where(join_requests.c.id == request_id)
                 .values(status="asked", updated_at=now))
    audit.record(conn, actor=actor.label, action="entry.ask", object_type="join_request",
                 object_id=str(request_id), detail={"text": words[:200]})
    return {**access_request_by_id(conn, actor=actor, request_id=request_id),
            "outbox_ids": ids}


def expire_due(conn: Connection, *, now: datetime, capabilities: CapabilityLookup
               ) -> list[int]:
    """Turn down every open request older than its group's ``timeout_hours``, telling the
    applicant; returns the expired requests' ids."""
    rows = conn.execute(_select().where(join_requests.c.status.in_(OPEN))
                        .where(join_requests.c.requested_at <= now - timedelta(hours=1))
                        .order_by(join_requests.c.id)).all()
    expired: list[int] = []
    settings_of: dict[int, Any] = {}
    for r in rows:
        request = _row(r)
        gid = request["group_id"]
        if gid not in settings_of:
            settings_of[gid] = automation.effective_settings(conn, gid).entry
        settings = settings_of[gid]
        if request["requested_at"] > now - timedelta(hours=settings.timeout_hours):
            continue
        mid = request["member_id"]
        _enqueue(conn, request, [
            SendPrivate(group_id=gid, member_id=mid,
                        text=decline_message(settings, TIMED_OUT)),
            AnswerJoinRequest(group_id=gid, member_id=mid, approve=False, reason=TIMED_OUT)],
            capabilities=capabilities, key=f"entry:{request['id']}:expire", now=now)
        settle(conn, group_id=gid, member_id=mid, status="expired", reason=TIMED_OUT, at=now)
        audit.record(conn, actor=SYSTEM.label, action="entry.expire",
                     object_type="join_request", object_id=str(request["id"]),
                     detail={"group": gid, "member": mid,
                             "hours": settings.timeout_hours})
        expired.append(request["id"])
    return expired


__all__ = ["CLOSED", "OPEN", "STATUSES", "OpenRequest", "access_request_by_id",
           "close_on_join", "count_open", "do_ask", "do_decide", "expire_due", "list_requests",
           "note_answer", "note_request", "settle", "standing"]
