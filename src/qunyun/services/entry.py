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

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, func, select, update

from qunyun.adapters.platforms.base import PlatformAdapter
from qunyun.adapters.storage.tables import (
    blacklist,
    enrolments,
    groups,
    identities,
    join_requests,
    members,
    memberships,
)
from qunyun.adapters.storage.tables import join_codes as join_codes_table
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.domain.actions import (
    Action,
    AnswerJoinRequest,
    Capability,
    CapabilityLookup,
    SendPrivate,
)
from qunyun.domain.automation import EntrySettings
from qunyun.domain.events import ChatRef, JoinRequested, PersonRef
from qunyun.domain.groups import invitation_code, inviter_number, is_placeholder
from qunyun.domain.staff import Permission
from qunyun.engine.rules.entry import decline_message, invite_message
from qunyun.i18n import Term
from qunyun.services import audit, automation, history, join_codes, outbox, posters
from qunyun.services.blacklist import active_entry
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.members import shown_name
from qunyun.services.users import SYSTEM, Actor, username_of

if TYPE_CHECKING:
    from qunyun.services.ingest import IngestConfig

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
    channel: str = ""
    token: str = ""  # their upload link's (share-to-join)


# --- recorded by ingest --------------------------------------------------------------------


def note_request(conn: Connection, *, group_id: int, member_id: int, at: datetime,
                 channel: str = "", bio: str = "", inbound_id: int | None = None
                 ) -> OpenRequest:
    """A request arrived: a new open request, or the one already open for this person and
    group (asking again does not queue them twice)."""
    row = conn.execute(select(join_requests.c.id, join_requests.c.status,
                              join_requests.c.channel, join_requests.c.token).where(
        join_requests.c.group_id == group_id, join_requests.c.member_id == member_id,
        join_requests.c.status.in_(OPEN)).order_by(join_requests.c.id.desc()).limit(1)).first()
    if row is not None:
        conn.execute(update(join_requests).where(join_requests.c.id == row.id).values(
            channel=channel[:128] or join_requests.c.channel, updated_at=at))
        return OpenRequest(int(row.id), group_id, str(row.status), repeat=True,
                           channel=channel[:128] or str(row.channel),
                           token=str(row.token or ""))
    token = secrets.token_urlsafe(18)
    request_id = int(conn.execute(join_requests.insert().values(
        group_id=group_id, member_id=member_id, status="pending", channel=channel[:128],
        bio=bio[:1000], answers=[], requested_at=at, decided_by="", reason="",
        updated_at=at, token=token, screenshot="").returning(join_requests.c.id)).scalar_one())
    history.append(conn, kind=JOIN_REQUESTED, member_id=member_id, group_id=group_id, at=at,
                   data={"channel": channel[:128]}, inbound_id=inbound_id)
    return OpenRequest(request_id, group_id, "pending", channel=channel[:128], token=token)


def upload_url(public_url: str, token: str) -> str:
    """Where an applicant uploads the screenshot of their share (share-to-join)."""
    return f"{public_url.rstrip('/')}/entry/s/{token}" if public_url and token else ""


@dataclass(frozen=True, slots=True)
class GateFacts:
    invited_by: str = ""
    upload_link: str = ""
    join_link: str = ""


def gate_facts(conn: Connection, *, group_id: int, channel: str, token: str,
               settings: EntrySettings, can_answer: bool, public_url: str, at: datetime
               ) -> GateFacts:
    """What the gate needs beyond the request: the current member whose personal code
    brought the applicant (``invitation``), their upload link (``share``), and the group's
    join code where the platform holds no request (letting them in sends it)."""
    invited_by = ""
    number = inviter_number(channel) if settings.gate == "invitation" else None
    if number is not None:
        row = conn.execute(select(members.c.id, members.c.display_name, members.c.number)
                           .join(memberships, memberships.c.member_id == members.c.id)
                           .where(members.c.number == number,
                                  memberships.c.group_id == group_id,
                                  memberships.c.left_at.is_(None))).first()
        if row is not None and active_entry(conn, int(row.id), at) is None:
            invited_by = shown_name(row.display_name, row.number)
    return GateFacts(invited_by=invited_by,
                     upload_link=(upload_url(public_url, token)
                                  if settings.gate == "share" else ""),
                     join_link="" if can_answer else _join_link(conn, group_id))


def _join_link(conn: Connection, group_id: int) -> str:
    """The group's shared join code, sent to an applicant let in where the platform holds
    no request."""
    chat = conn.execute(select(groups.c.platform, groups.c.external_id)
                        .where(groups.c.id == group_id)).first()
    return (join_codes.link_for_group(conn, platform=chat.platform,
                                      chat_id=str(chat.external_id))
            if chat is not None else "")


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
            "by_platform": r.decided_by == "platform", "reason": r.reason,
            "screenshot": r.screenshot or ""}


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


# --- applications staff record, members' invitation codes ---------------------------------


def do_apply(conn: Connection, *, actor: Actor, group_id: int, config: IngestConfig,
             member_id: int | None = None, user: str = "", name: str = "", note: str = "",
             channel: str = "", now: datetime) -> dict[str, Any]:
    """An application that reached staff elsewhere (a private chat on WeCom, where the
    platform holds no join request; a form): it enters the event path as a join request,
    so the group's gate decides it as it would a platform's. The applicant is a member
    (``member_id``, with an identity on the group's platform) or a platform user id."""
    from qunyun.services.ingest import do_ingest_event  # ingest records requests here

    actor.require(Permission.OPERATE)
    chat = conn.execute(select(groups.c.platform, groups.c.external_id, groups.c.name)
                        .where(groups.c.id == group_id)).first()
    if chat is None:
        raise NotFound("group {group_id} not found", group_id=group_id)
    if is_placeholder(str(chat.external_id)):
        raise Conflict("group {group_id} has no chat yet", group_id=group_id)
    if member_id is not None:
        found = conn.execute(select(identities.c.kind, identities.c.external_id,
                                    identities.c.display_name).where(
            identities.c.member_id == member_id, identities.c.platform == chat.platform)
            .order_by(identities.c.weak, identities.c.id).limit(1)).first()
        if found is None:
            raise InvalidInput("member: {member} has no {platform} account; give the user id",
                               member=member_id, platform=Term("platform", chat.platform))
        person = PersonRef(external_id=str(found.external_id), kind=str(found.kind),
                           name=name.strip()[:64] or str(found.display_name))
    elif user.strip():
        person = PersonRef(external_id=user.strip()[:255], name=name.strip()[:64])
    else:
        raise InvalidInput("member: give a member or a platform user id")
    event = JoinRequested(platform=str(chat.platform),
                          external_event_id=f"apply:{secrets.token_hex(12)}", occurred_at=now,
                          chat=ChatRef(external_id=str(chat.external_id)), member=person,
                          channel=channel.strip()[:128], bio=note.strip()[:1000])
    result = do_ingest_event(conn, event, config=config, received_at=now)
    assert result.member_id is not None
    request_id = conn.execute(select(join_requests.c.id).where(
        join_requests.c.group_id == group_id, join_requests.c.member_id == result.member_id)
        .order_by(join_requests.c.id.desc()).limit(1)).scalar_one()
    audit.record(conn, actor=actor.label, action="entry.apply", object_type="join_request",
                 object_id=str(request_id),
                 detail={"group": group_id, "member": result.member_id})
    return {**access_request_by_id(conn, actor=actor, request_id=int(request_id)),
            "outbox_ids": result.outbox_ids}


def do_invitation_code(uow: UnitOfWork, *, actor: Actor,
                       adapter_for: Callable[[str], PlatformAdapter], account: str,
                       group_id: int, member_id: int) -> dict[str, Any]:
    """A member's personal invitation code to a group they are in (made once; asking again
    gives the same): whoever comes through it passes an ``invitation`` gate."""
    actor.require(Permission.OPERATE)
    with uow.read() as conn:
        row = conn.execute(select(members.c.number, members.c.display_name,
                                  groups.c.external_id, groups.c.platform)
                           .select_from(memberships)
                           .join(members, members.c.id == memberships.c.member_id)
                           .join(groups, groups.c.id == memberships.c.group_id)
                           .where(memberships.c.group_id == group_id,
                                  memberships.c.member_id == member_id,
                                  memberships.c.left_at.is_(None))).first()
        if row is None:
            raise Conflict("member {member_id} is not in group {group_id}",
                           member_id=member_id, group_id=group_id)
        code = invitation_code(group_id, int(row.number))
        known = conn.execute(select(join_codes_table.c.id).where(
            join_codes_table.c.platform == row.platform,
            join_codes_table.c.channel == code,
            join_codes_table.c.state == join_codes.ACTIVE)).scalar()
    if known is not None:
        with uow.read() as conn:
            made = join_codes.access_join_code(conn, actor=actor, code_id=int(known))
    else:
        adapter = adapter_for(str(row.platform))
        made = join_codes.do_create_join_code(
            uow, actor=actor, adapter=adapter, account=account, channel=code,
            chats=[str(row.external_id)], capacity=max(join_codes.limits_of(adapter).capacities),
            remark=(row.display_name or code)[:64])
    return {"group_id": group_id, "member_id": member_id, "code": code,
            "link": made["qr_code"], "join_code_id": made["id"]}


# --- share-to-join: the applicant's screenshot ----------------------------------------------


SHOTS = "entry"  # the screenshots' folder, under the uploads folder


def _by_token(conn: Connection, token: str) -> dict[str, Any]:
    row = conn.execute(_select().where(join_requests.c.token == token)).first() \
        if token and len(token) <= 32 else None
    if row is None:
        raise NotFound("this upload link is not valid")
    return _row(row)


def share_form(conn: Connection, *, token: str) -> dict[str, Any]:
    """The applicant's own page (their upload link): the group they asked to join and where
    their request stands — nothing about anyone else."""
    request = _by_token(conn, token)
    return {"group": request["group"], "status": request["status"],
            "open": request["open"], "uploaded": bool(request["screenshot"]),
            "reason": request["reason"] if request["status"] == "declined" else ""}


def do_upload(conn: Connection, *, token: str, data: bytes, folder: Path, now: datetime
              ) -> dict[str, Any]:
    """The applicant's screenshot through their upload link."""
    request = _by_token(conn, token)
    return _attach(conn, actor=SYSTEM, request=request, data=data, folder=folder, now=now)


def do_attach(conn: Connection, *, actor: Actor, request_id: int, data: bytes, folder: Path,
              now: datetime) -> dict[str, Any]:
    """A screenshot the applicant sent staff privately (WeChat, where no bot sees it),
    attached to their request on their behalf."""
    actor.require(Permission.OPERATE)
    request = access_request_by_id(conn, actor=actor, request_id=request_id)
    return _attach(conn, actor=actor, request=request, data=data, folder=folder, now=now)


def _attach(conn: Connection, *, actor: Actor, request: dict[str, Any], data: bytes,
            folder: Path, now: datetime) -> dict[str, Any]:
    if not request["open"]:
        raise Conflict("join request {request_id} was already decided ({status})",
                       request_id=request["id"],
                       status=Term("entry.status", request["status"]))
    name = posters.store_picture(folder / SHOTS, f"{request['group_id']}/{request['id']}.png",
                                 data, field="screenshot", side=1600)
    conn.execute(update(join_requests).where(join_requests.c.id == request["id"]).values(
        screenshot=name, status="answered", updated_at=now))
    audit.record(conn, actor=actor.label, action="entry.screenshot",
                 object_type="join_request", object_id=str(request["id"]),
                 detail={"group": request["group_id"], "member": request["member_id"]})
    return access_request_by_id(conn, actor=SYSTEM, request_id=request["id"])


def screenshot(conn: Connection, *, actor: Actor, request_id: int, folder: Path) -> bytes:
    """The request's screenshot (PNG) for the person deciding."""
    request = access_request_by_id(conn, actor=actor, request_id=request_id)
    path = folder / SHOTS / str(request["screenshot"])
    if not request["screenshot"] or not path.is_file():
        raise NotFound("join request {request_id} has no screenshot", request_id=request_id)
    return path.read_bytes()


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
                       request_id=request_id, status=Term("entry.status", request["status"]))
    reason = reason.strip()[:500]
    gid, mid = request["group_id"], request["member_id"]
    settings = automation.effective_settings(conn, gid).entry
    actions: list[Action] = []
    if not approve and tell:
        actions.append(SendPrivate(group_id=gid, member_id=mid, text=decline_message(
            settings, reason or "不符合本群的入群条件")))
    invite = ""
    if approve and Capability.ANSWER_JOIN_REQUEST not in capabilities(request["platform"]):
        invite = invite_message(settings, _join_link(conn, gid))
    actions.append(AnswerJoinRequest(group_id=gid, member_id=mid, approve=approve,
                                     reason=reason, invite=invite))
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
                       request_id=request_id, status=Term("entry.status", request["status"]))
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
