"""Fission campaigns (F20) and their attribution (F21): the one writer of the fission tables.

A campaign runs over entry groups of one platform. A participant gets their own join code
(WeCom's ``state``, a Telegram named invite link, a sandbox code — ``join_codes`` makes it,
named ``fx<campaign>m<number>``); a newcomer who joins through it is an invite of theirs
(``note_join``, from ingest — the first inviter of a person only, never a rejoin or the
participant themselves), recorded pending. An invite is valid once the invitee has stayed
``valid_hours`` and is not blacklisted; the worker settles due invites in bulk
(``validate_due``, within seconds when the campaign says 0); leaving before takes it back
(``note_leave``). Settling counts each inviter's valid invites, reserves the stages they
passed while stock lasts (the stage's row locked: never more rewards than stock, whatever
runs at once) and tells each inviter how far they are, once per settlement.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import re
import secrets
import statistics
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Boolean,
    Connection,
    Integer,
    String,
    Table,
    bindparam,
    cast,
    func,
    literal,
    select,
    update,
)

from qunyun.adapters.platforms.base import PlatformAdapter, PlatformError
from qunyun.adapters.storage.sql import (
    epoch_seconds,
    insert_ignore,
    insert_ignore_returning,
    insert_select_ignore_stmt,
)
from qunyun.adapters.storage.tables import (
    UTCDateTime,
    conversions,
    enrolments,
    fission_campaigns,
    fission_invites,
    fission_participants,
    fission_rewards,
    fission_stages,
    groups,
    members,
    memberships,
)
from qunyun.adapters.storage.tables import join_codes as join_codes_table
from qunyun.adapters.storage.tables import outbox as outbox_table
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.analytics.overview import local_date
from qunyun.clock import utcnow
from qunyun.domain.actions import (
    Action,
    Capability,
    CapabilityLookup,
    HandToStaff,
    SendPrivate,
    SendText,
    describe_missing,
)
from qunyun.domain.automation import FreshnessSettings
from qunyun.domain.fission import (
    CODE_PREFIX,
    INVITES,
    POSTER_LINE,
    SHARE_LINE,
    TEXTS,
    FissionError,
    Stage,
    check_stages,
    check_texts,
    code_parts,
    completing,
    crossed,
    fill,
    in_brief,
    k_factor,
    next_stage,
    participant_code,
    share_stage,
    text_of,
)
from qunyun.domain.staff import Permission
from qunyun.domain.storable import text_problem
from qunyun.engine.freshness import is_stale
from qunyun.i18n import Term, translate
from qunyun.services import (
    audit,
    blacklist,
    join_codes,
    outbox,
    posters,
    spreadsheets,
    tags,
    tasks,
)
from qunyun.services.errors import Conflict, InvalidInput, NotFound, ServiceError
from qunyun.services.leads import mask_address, mask_phone
from qunyun.services.members import shown_name
from qunyun.services.users import SYSTEM, Actor

log = logging.getLogger(__name__)

ACTIVE, PAUSED, ENDED = "active", "paused", "ended"
RULE = "fission"


# --- campaigns ----------------------------------------------------------------------------


def do_create_campaign(conn: Connection, *, actor: Actor, name: str, group_ids: Sequence[int],
                       stages: Sequence[Stage], account: str, valid_hours: int = 0,
                       completers_group_id: int | None = None,
                       completers_tag: str = "", texts: dict[str, str] | None = None,
                       enrol_newcomers: bool = True, now: datetime) -> dict[str, Any]:
    """A campaign over entry groups of one platform; ``account`` is the connected corp or
    bot (the sandbox's any name) that makes the participants' codes, as for join codes."""
    actor.require(Permission.OPERATE)
    try:
        own_texts = check_texts(texts or {})
    except FissionError as exc:
        raise InvalidInput.wrap(exc) from None
    name = name.strip()
    if not 1 <= len(name) <= 128:
        raise InvalidInput("name: 1–128 characters")
    if not account.strip():
        raise InvalidInput("account: the connected corp or bot that makes the codes")
    if not 0 <= valid_hours <= 24 * 30:
        raise InvalidInput("valid_hours: between 0 and 720")
    try:
        checked = check_stages(stages)
    except FissionError as exc:
        raise InvalidInput.wrap(exc) from None
    ids = list(dict.fromkeys(int(g) for g in group_ids))
    if not ids:
        raise InvalidInput("groups: at least one entry group")
    found = {int(r.id): str(r.platform) for r in conn.execute(
        select(groups.c.id, groups.c.platform).where(groups.c.id.in_(ids)))}
    if missing := [g for g in ids if g not in found]:
        raise NotFound("group {group_id} not found", group_id=missing[0])
    platforms = set(found.values())
    if len(platforms) != 1:
        raise InvalidInput("groups: all on one platform (a code belongs to one)")
    if completers_group_id is not None and conn.execute(select(groups.c.id).where(
            groups.c.id == completers_group_id)).first() is None:
        raise NotFound("group {group_id} not found", group_id=completers_group_id)
    campaign_id = int(conn.execute(fission_campaigns.insert().values(
        name=name, platform=platforms.pop(), account=account.strip()[:64], group_ids=ids,
        completers_group_id=completers_group_id, valid_hours=valid_hours, status=ACTIVE,
        poster={}, texts=own_texts, enrol_newcomers=enrol_newcomers,
        plan=[{"position": i, "invites": st.invites, "reward": st.reward, "kind": st.kind}
              for i, st in enumerate(checked)],
        completers_tag=_checked_tag(completers_tag),
        created_by=actor.label, created_at=now).returning(fission_campaigns.c.id))
        .scalar_one())
    conn.execute(fission_stages.insert(), [
        {"campaign_id": campaign_id, "position": i, "invites": s.invites, "reward": s.reward,
         "stock": s.stock, "taken": 0, "cost_cents": s.cost_cents, "kind": s.kind}
        for i, s in enumerate(checked)])
    audit.record(conn, actor=actor.label, action="fission.create", object_type="campaign",
                 object_id=campaign_id, detail={"name": name, "groups": ids,
                                                "stages": [s.to_dict() for s in checked]})
    return access_campaign(conn, actor=actor, campaign_id=campaign_id)


def access_campaign(conn: Connection, *, actor: Actor, campaign_id: int) -> dict[str, Any]:
    actor.require(Permission.VIEW)
    found = _campaigns(conn, fission_campaigns.c.id == campaign_id)
    if not found:
        raise NotFound("fission campaign {campaign_id} not found", campaign_id=campaign_id)
    return found[0]


def list_campaigns(conn: Connection, *, actor: Actor) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    return _campaigns(conn, None)


def _campaigns(conn: Connection, where: Any) -> list[dict[str, Any]]:
    """Campaigns with their stages, groups' names and participant counts: four queries for
    any number of them (the list read each campaign on its own)."""
    stmt = select(fission_campaigns).order_by(fission_campaigns.c.id.desc())
    rows = [dict(r) for r in conn.execute(
        stmt if where is None else stmt.where(where)).mappings()]
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    stages: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in conn.execute(select(fission_stages).where(fission_stages.c.campaign_id.in_(ids))
                          .order_by(fission_stages.c.position)).mappings():
        stages[int(r["campaign_id"])].append(
            {**dict(r), "left": max(0, int(r["stock"]) - int(r["taken"]))})
    names = dict(conn.execute(select(groups.c.id, groups.c.name).where(
        groups.c.id.in_({g for r in rows for g in r["group_ids"]}))).all())
    counts: dict[int, int] = dict(conn.execute(
        select(fission_participants.c.campaign_id, func.count())
        .where(fission_participants.c.campaign_id.in_(ids))
        .group_by(fission_participants.c.campaign_id)).all())
    return [{**r, "stages": stages[int(r["id"])],
             "groups": [{"id": g, "name": names.get(g, "")} for g in r["group_ids"]],
             "participants": int(counts.get(r["id"], 0))} for r in rows]


def do_set_status(conn: Connection, *, actor: Actor, campaign_id: int, status: str,
                  now: datetime) -> dict[str, Any]:
    """Pause (joins through codes are not credited meanwhile), resume, or end for good."""
    actor.require(Permission.OPERATE)
    if status not in (ACTIVE, PAUSED, ENDED):
        raise InvalidInput("status: active, paused or ended, not {status!r}", status=status)
    current = access_campaign(conn, actor=actor, campaign_id=campaign_id)
    if current["status"] == ENDED:
        raise Conflict("fission campaign {campaign_id} has ended", campaign_id=campaign_id)
    conn.execute(update(fission_campaigns).where(fission_campaigns.c.id == campaign_id)
                 .values(status=status, ended_at=now if status == ENDED else None))
    audit.record(conn, actor=actor.label, action=f"fission.{status}", object_type="campaign",
                 object_id=campaign_id)
    return access_campaign(conn, actor=actor, campaign_id=campaign_id)


def _checked_tag(tag: str) -> str:
    tag = tag.strip()
    if len(tag) > 64:
        raise InvalidInput("completers_tag: at most 64 characters")
    return tag


def do_update_campaign(conn: Connection, *, actor: Actor, campaign_id: int,
                       texts: dict[str, str] | None = None, completers_tag: str | None = None,
                       enrol_newcomers: bool | None = None) -> dict[str, Any]:
    """The loop's messages as the team writes them (an empty one goes back to the default),
    the completers' tag, and whether newcomers are enrolled with their own poster."""
    actor.require(Permission.OPERATE)
    campaign = access_campaign(conn, actor=actor, campaign_id=campaign_id)
    values: dict[str, Any] = {}
    if texts is not None:
        merged = {**dict(campaign["texts"] or {}), **texts}
        try:
            values["texts"] = check_texts(merged)
        except FissionError as exc:
            raise InvalidInput.wrap(exc) from None
    if completers_tag is not None:
        values["completers_tag"] = _checked_tag(completers_tag)
    if enrol_newcomers is not None:
        values["enrol_newcomers"] = enrol_newcomers
    if values:
        conn.execute(update(fission_campaigns).where(fission_campaigns.c.id == campaign_id)
                     .values(**values))
        audit.record(conn, actor=actor.label, action="fission.update", object_type="campaign",
                     object_id=campaign_id, detail={k: v for k, v in values.items()})
    return access_campaign(conn, actor=actor, campaign_id=campaign_id)


def texts_of(campaign: dict[str, Any]) -> dict[str, str]:
    """Every message of the loop as it goes out for this campaign (own or default)."""
    return {kind: text_of(campaign.get("texts"), kind) for kind in TEXTS}


# --- participants ---------------------------------------------------------------------------


def do_join(uow: UnitOfWork, *, actor: Actor, adapter_for: Callable[[str], PlatformAdapter],
            campaign_id: int, member_id: int, now: datetime) -> dict[str, Any]:
    """The member takes part: their own code and link (made once; asking again gives the
    same), through the adapter of the campaign's platform (``adapter_for``: the runtime's
    ``adapter``). The platform makes the code first; if it refuses, nothing is stored."""
    actor.require(Permission.OPERATE)
    with uow.read() as conn:
        campaign = access_campaign(conn, actor=actor, campaign_id=campaign_id)
        known = _participant(conn, campaign_id, member_id)
        row = conn.execute(select(members.c.number, members.c.display_name).where(
            members.c.id == member_id, members.c.merged_into_id.is_(None))).first()
    if known is not None:
        return known
    if row is None:
        raise NotFound("member {member_id} not found", member_id=member_id)
    if campaign["status"] != ACTIVE:
        raise Conflict("fission campaign {campaign_id} is {status}", campaign_id=campaign_id,
                       status=Term("fission.status", campaign["status"]))
    adapter = adapter_for(campaign["platform"])
    code = participant_code(campaign_id, int(row.number))
    limits = join_codes.limits_of(adapter)
    made = join_codes.do_create_join_code(
        uow, actor=actor, adapter=adapter, account=campaign["account"], channel=code,
        chats=campaign["group_ids"], capacity=max(limits.capacities),
        remark=(row.display_name or code)[:64])
    with uow.write() as conn:
        insert_ignore(conn, fission_participants, {
            "campaign_id": campaign_id, "member_id": member_id, "code": code,
            "link": made["qr_code"], "join_code_id": made["id"],
            "token": secrets.token_urlsafe(16), "created_at": now},
            ["campaign_id", "member_id"])
        audit.record(conn, actor=actor.label, action="fission.join", object_type="campaign",
                     object_id=campaign_id, detail={"member": member_id, "code": code})
        found = _participant(conn, campaign_id, member_id)
    assert found is not None
    return found


def _participant(conn: Connection, campaign_id: int, member_id: int) -> dict[str, Any] | None:
    """A participant with their link as their join code has it now: rotating a code into
    spare groups makes a new link on some platforms (Telegram), and the poster must carry
    the live one, not the one stored when the code was made."""
    row = conn.execute(
        select(fission_participants, join_codes_table.c.qr_code)
        .outerjoin(join_codes_table,
                   join_codes_table.c.id == fission_participants.c.join_code_id)
        .where(fission_participants.c.campaign_id == campaign_id,
               fission_participants.c.member_id == member_id)).mappings().first()
    if row is None:
        return None
    out = {k: v for k, v in row.items() if k != "qr_code"}
    return {**out, "link": row["qr_code"] or row["link"]}


# --- posters -------------------------------------------------------------------------------


LAYOUT_FIELDS = {"qr_x": ("qr", "x"), "qr_y": ("qr", "y"), "qr_size": ("qr", "size"),
                 "name_x": ("name", "x"), "name_y": ("name", "y"),
                 "name_size": ("name", "size"), "color": ("name", "color"),
                 "template": ("name", "template")}


def layout_from(fields: dict[str, str]) -> dict[str, Any]:
    """Flat fields (qr_x=225, color=#333333 …) as poster settings; numbers checked."""
    out: dict[str, dict[str, Any]] = {}
    for key, (part, name) in LAYOUT_FIELDS.items():
        raw = str(fields.get(key, "")).strip()
        if not raw:
            continue
        if name in ("color", "template"):
            out.setdefault(part, {})[name] = raw
        elif raw.lstrip("-").isdigit() and len(raw) < 7:
            out.setdefault(part, {})[name] = int(raw)
        else:
            raise InvalidInput("poster {field}: a whole number, not {value!r}", field=key,
                               value=raw[:20])
    return out


def do_set_poster(conn: Connection, *, actor: Actor, campaign_id: int,
                  values: dict[str, Any], background: bytes | None = None,
                  folder: Path) -> dict[str, Any]:
    """The poster's layout (where the QR code and the name go) and, optionally, a new
    background picture; checked before anything is kept."""
    actor.require(Permission.OPERATE)
    campaign = access_campaign(conn, actor=actor, campaign_id=campaign_id)
    current = dict(campaign["poster"] or {})
    checked = posters.check_settings({**current, **values})
    if background is not None:
        checked["background"] = posters.store_background(folder, campaign_id, background)
    conn.execute(update(fission_campaigns).where(fission_campaigns.c.id == campaign_id)
                 .values(poster=checked))
    audit.record(conn, actor=actor.label, action="fission.poster", object_type="campaign",
                 object_id=campaign_id, detail={"qr": checked["qr"],
                                                "background": bool(checked["background"])})
    return access_campaign(conn, actor=actor, campaign_id=campaign_id)


def poster_preview(conn: Connection, *, actor: Actor, campaign_id: int,
                   values: dict[str, Any], folder: Path) -> bytes:
    """How a layout would look (the editor's live preview): a sample name and code over the
    campaign's background; nothing is kept."""
    campaign = access_campaign(conn, actor=actor, campaign_id=campaign_id)
    settings = posters.check_settings({**dict(campaign["poster"] or {}), **values})
    background = (folder / str(settings["background"])) if settings.get("background") \
        else None
    return posters.render(settings=settings, title=campaign["name"], nickname="示例昵称",
                          link=f"https://qunyun.invalid/{campaign_id}/sample",
                          background=background).png


def poster_for(conn: Connection, *, actor: Actor, campaign_id: int, member_id: int,
               folder: Path) -> bytes:
    """A participant's poster as PNG: the campaign's layout with their own code and name
    (rendered once per layout, name and code, then served from the cache)."""
    campaign = access_campaign(conn, actor=actor, campaign_id=campaign_id)
    mine = _participant(conn, campaign_id, member_id)
    if mine is None:
        raise NotFound("member {member_id} does not take part in campaign {campaign_id}",
                       member_id=member_id, campaign_id=campaign_id)
    settings = dict(campaign["poster"] or {})
    background = (folder / str(settings["background"])) if settings.get("background") \
        else None
    nickname = member_name(conn, member_id)
    key = {"campaign": campaign_id, "name": campaign["name"], "nickname": nickname,
           "link": mine["link"], "settings": settings,
           "background": background.stat().st_mtime_ns if background and background.is_file()
           else 0}
    return posters.cached(folder, key, lambda: posters.render(
        settings=settings, title=campaign["name"], nickname=nickname, link=mine["link"],
        background=background))


def public_poster(conn: Connection, *, token: str, folder: Path) -> bytes:
    """A participant's poster by its unguessable token: the address a platform fetches the
    picture from (and a member may open), without signing in."""
    found = by_token(conn, token)
    if found is None:
        raise NotFound("poster not found")
    return poster_for(conn, actor=SYSTEM, campaign_id=found[0], member_id=found[1],
                      folder=folder)


def by_token(conn: Connection, token: str) -> tuple[int, int] | None:
    """(campaign id, member id) of the participant whose public token this is."""
    if not TOKEN.match(token):
        return None
    row = conn.execute(select(fission_participants.c.campaign_id,
                              fission_participants.c.member_id).where(
        fission_participants.c.token == token)).first()
    return (int(row.campaign_id), int(row.member_id)) if row is not None else None


# --- the loop (ingest and the worker) ---------------------------------------------------------


# a credited join's one statement: the invite inserted straight from the participant's row
# (their code names the campaign; the campaign's settings come from the batch's cache)
_INVITE_COLUMNS = ("campaign_id", "inviter_id", "invitee_id", "group_id", "joined_at",
                   "valid_at", "status", "reason", "welcome_due")
_INVITE_SOURCE = (
    select(fission_participants.c.campaign_id, fission_participants.c.member_id,
           bindparam("invitee", type_=Integer()), bindparam("group", type_=Integer()),
           bindparam("joined_at", type_=UTCDateTime()), bindparam("valid_at", type_=UTCDateTime()),
           bindparam("status", type_=String()), bindparam("reason", type_=String()),
           bindparam("welcome", type_=Boolean()))
    .where(fission_participants.c.code == bindparam("code"),
           fission_participants.c.member_id != bindparam("invitee")))
_CAMPAIGN_FOR_JOIN = select(*(fission_campaigns.c[k] for k in (
    "status", "group_ids", "valid_hours", "enrol_newcomers"))).where(
    fission_campaigns.c.id == bindparam("c"))
_MINE = ((fission_participants.c.campaign_id == bindparam("c"))
         & (fission_participants.c.member_id == bindparam("m")))
_VALID_COUNT = select(fission_participants.c.valid_invites).where(_MINE)


def note_join(conn: Connection, *, group_id: int, member_id: int, channel: str,
              rejoin: bool, at: datetime, received_at: datetime | None = None,
              barred: bool = False, campaigns: dict[int, Any] | None = None,
              defer: list[dict[str, Any]] | None = None) -> None:
    """A join through a participant's code is their invite: recorded here, pending, and
    settled by the worker (``validate_due``: counted, rewarded, the inviter told) once its
    window has passed — at once when the campaign says 0 hours, in bulk. Nothing for any
    other join: only a channel shaped like a participant's code is looked at. ``barred``:
    the newcomer is blacklisted (ingest knows it already); ``campaigns``: the batch's cache
    of campaign settings; ``defer``: the batch's list the invite joins, written with the
    others (``record_invites``) instead of now. The window counts from the join, or from
    when it reached us if the platform's clock runs ahead of ours (an invite valid at once
    is not held back by the difference)."""
    parts = code_parts(channel)
    if parts is None or rejoin:
        return
    campaign_id = parts[0]
    cache = campaigns if campaigns is not None else {}
    if campaign_id not in cache:
        cache[campaign_id] = conn.execute(_CAMPAIGN_FOR_JOIN, {"c": campaign_id}).first()
    found = cache[campaign_id]
    if found is None or found.status != ACTIVE or group_id not in found.group_ids:
        return  # paused or ended, another group
    invite = {
        "code": channel, "invitee": member_id, "group": group_id, "joined_at": at,
        "valid_at": min(at, received_at or at) + timedelta(hours=int(found.valid_hours)),
        # someone blacklisted is never an invite; the row keeps them from being counted later
        "status": "revoked" if barred else "pending", "reason": "blacklisted" if barred else "",
        "welcome": bool(found.enrol_newcomers) and not barred}
    if defer is not None:
        defer.append(invite)
    else:
        record_invites(conn, [invite])


def record_invites(conn: Connection, invites: list[dict[str, Any]]) -> None:
    """Credited joins' invites in one statement (each inviter looked up by their code in
    it; the first invite of an invitee in a campaign stands, a second is ignored)."""
    conn.execute(insert_select_ignore_stmt(
        conn.dialect.name, fission_invites, _INVITE_COLUMNS, _INVITE_SOURCE,
        ("campaign_id", "invitee_id"), returning=False), invites)


def note_leave(conn: Connection, *, group_id: int, member_id: int, at: datetime,
               can: frozenset[Capability]) -> list[tuple[str, Action]]:
    """Leaving within the window takes the invite back, and the inviter is told."""
    rows = conn.execute(select(fission_invites.c.id, fission_invites.c.campaign_id,
                               fission_invites.c.inviter_id, fission_campaigns.c.texts)
                        .join(fission_campaigns,
                              fission_campaigns.c.id == fission_invites.c.campaign_id)
                        .where(fission_invites.c.invitee_id == member_id,
                               fission_invites.c.group_id == group_id,
                               fission_invites.c.status == "pending")).all()
    actions: list[tuple[str, Action]] = []
    for r in rows:
        conn.execute(update(fission_invites).where(fission_invites.c.id == r.id)
                     .values(status="revoked", reason="left", welcome_due=False))
        count = valid_count(conn, int(r.campaign_id), int(r.inviter_id))
        actions += tell(can, group_id=group_id, member_id=int(r.inviter_id), text=fill(
            text_of(r.texts, "taken_back"), name=member_name(conn, int(r.inviter_id)),
            invitee=member_name(conn, member_id), count=count))
    return actions


def tell(can: frozenset[Capability], *, group_id: int, member_id: int, text: str,
         attachments: tuple[dict[str, str], ...] = ()) -> list[tuple[str, Action]]:
    """How a participant hears from the loop (their progress, the newcomer's welcome), as
    the platform allows: @-mentioned in the group; else privately (without the leading
    @name); else not at all — WeCom lets no bot post in a group or write on its own, and a
    staff task per invite or newcomer would bury the team; the participant's own page
    (``/fission/s/<token>``) shows their progress there."""
    if {Capability.SEND_TEXT, Capability.MENTION} <= can:
        return [(RULE, SendText(group_id=group_id, mention_member_ids=(member_id,),
                                text=text, attachments=attachments))]
    if Capability.SEND_PRIVATE in can:
        words = text.split(" ", 1)[1] if text.startswith("@") and " " in text else text
        return [(RULE, SendPrivate(group_id=group_id, member_id=member_id, text=words,
                                   attachments=attachments))]
    return []


SETTLE_BATCH = 500


def validate_due(conn: Connection, *, now: datetime, capabilities: CapabilityLookup,
                 freshness: FreshnessSettings | None = None) -> int:
    """Pending invites whose window has passed, settled together: valid if the invitee is
    still in the group and not blacklisted, else taken back; each inviter's valid invites
    counted in one step, the stages they passed reserved while stock lasts, and one message
    per inviter says how far they are. The rows are locked as they are read (another worker
    skips them), so each invite is decided once. ``freshness``: the team's; an invite that
    became valid longer ago than a reply may wait (the worker was down, a backlog replayed)
    is counted and rewarded without a message. Returns how many were decided."""
    due = conn.execute(_DUE, {"now": now, "n": SETTLE_BATCH}).all()
    if not due:
        return 0
    barred = blacklist.barred_among(conn, [int(r.invitee_id) for r in due], now)
    valid = [r for r in due if r.stayed and int(r.invitee_id) not in barred]
    for reason, ids in (("blacklisted", [r.id for r in due if int(r.invitee_id) in barred]),
                        ("left", [r.id for r in due if not r.stayed
                                  and int(r.invitee_id) not in barred])):
        _update_ids(conn, fission_invites, ids, status="revoked", reason=reason,
                    welcome_due=False)
    _update_ids(conn, fission_invites, [r.id for r in valid], status="valid")
    if valid:
        _settle(conn, valid, now=now, capabilities=capabilities, freshness=freshness)
    return len(due)


_STAYED = (select(memberships.c.id).where(
    memberships.c.member_id == fission_invites.c.invitee_id,
    memberships.c.group_id == fission_invites.c.group_id, memberships.c.left_at.is_(None))
    .exists())
_INVITER, _INVITEE = members.alias("inviter"), members.alias("invitee")
_DUE = (select(fission_invites.c.id, fission_invites.c.campaign_id,
               fission_invites.c.inviter_id, fission_invites.c.invitee_id,
               fission_invites.c.group_id, fission_invites.c.valid_at,
               _STAYED.label("stayed"), _INVITER.c.display_name.label("inviter_name"),
               _INVITER.c.number.label("inviter_number"),
               _INVITEE.c.display_name.label("invitee_name"),
               _INVITEE.c.number.label("invitee_number"))
        .join(_INVITER, _INVITER.c.id == fission_invites.c.inviter_id)
        .join(_INVITEE, _INVITEE.c.id == fission_invites.c.invitee_id)
        .where(fission_invites.c.status == "pending",
               fission_invites.c.valid_at <= bindparam("now", type_=UTCDateTime()))
        .order_by(fission_invites.c.valid_at, fission_invites.c.id)
        .limit(bindparam("n")).with_for_update(of=fission_invites, skip_locked=True))
_COUNT_UP_BY = (update(fission_participants).where(_MINE)
                .values(valid_invites=fission_participants.c.valid_invites + bindparam("n")))


def _update_ids(conn: Connection, table: Table, ids: Sequence[int], **values: Any) -> None:
    """``values`` on the rows with these ids (500 a statement: every database's limit)."""
    for start in range(0, len(ids), 500):
        conn.execute(update(table).where(table.c.id.in_(ids[start:start + 500]))
                     .values(**values))


def _settle(conn: Connection, valid: Sequence[Any], *, now: datetime,
            capabilities: CapabilityLookup, freshness: FreshnessSettings | None) -> None:
    """Count valid invites on their inviters (rows updated in one order, then read back:
    the row locks hand each count out once), reserve the stages passed, tell each inviter."""
    mine: dict[tuple[int, int], list[Any]] = defaultdict(list)
    for r in valid:
        mine[(int(r.campaign_id), int(r.inviter_id))].append(r)
    conn.execute(_COUNT_UP_BY, [{"c": c, "m": m, "n": len(rs)}
                                for (c, m), rs in sorted(mine.items())])
    counts: dict[tuple[int, int], int] = {}
    by_campaign: dict[int, list[int]] = defaultdict(list)
    for c, m in mine:
        by_campaign[c].append(m)
    campaigns = {int(r.id): r for r in conn.execute(
        select(fission_campaigns.c.id, fission_campaigns.c.platform, fission_campaigns.c.texts,
               fission_campaigns.c.plan).where(fission_campaigns.c.id.in_(sorted(by_campaign))))}
    for c, people in by_campaign.items():
        for start in range(0, len(people), 500):
            counts.update(((c, int(m)), int(n)) for m, n in conn.execute(
                select(fission_participants.c.member_id, fission_participants.c.valid_invites)
                .where(fission_participants.c.campaign_id == c,
                       fission_participants.c.member_id.in_(people[start:start + 500]))))
    passed = {key: crossed(campaigns[key[0]].plan, counts[key] - len(rs), counts[key])
              for key, rs in mine.items()}
    outcomes = _reserve_passed(conn, passed, now)
    sends: list[outbox.BulkSend] = []
    for key, rs in mine.items():
        campaign, count, last = campaigns[key[0]], counts[key], rs[-1]
        texts, plan = campaign.texts, campaign.plan
        name = shown_name(last.inviter_name, last.inviter_number)
        says = [fill(text_of(texts, "done" if outcomes[(*key, int(st["position"]))]
                             == "reserved" else "sold_out"),
                     name=name, reward=st["reward"], count=st["invites"])
                for st in passed[key] if outcomes.get((*key, int(st["position"])))]
        ahead = next_stage(plan, count)
        if ahead is not None and (not says or count > int(passed[key][-1]["invites"])):
            says.append(fill(text_of(texts, "progress"), name=name, count=count,
                             invitee=in_brief([shown_name(r.invitee_name, r.invitee_number)
                                               for r in rs]),
                             left=int(ahead["invites"]) - count, reward=ahead["reward"]))
        platform = str(campaign.platform)
        told = [a for text in says for a in tell(
            capabilities(platform), group_id=int(last.group_id), member_id=key[1], text=text)
            if freshness is None or not is_stale(a[1], now - last.valid_at, freshness)]
        sends += [outbox.BulkSend(key=f"fission:{last.id}:{i}", platform=platform, action=a,
                                  rule=rule, due=now) for i, (rule, a) in enumerate(told)]
    outbox.enqueue_many(conn, sends, capabilities=capabilities,
                        staff_task=lambda send, missing: _staff_task(conn, send, missing, now),
                        now=now, ids=False)


def _staff_task(conn: Connection, send: outbox.BulkSend, missing: list[str], now: datetime
                ) -> int:
    """``tell`` picks what the platform can do, so this is there for completeness only."""
    return tasks.create_task(
        conn, kind=send.action.type_name, title=send.action.summary(), platform=send.platform,
        reason=describe_missing(missing), group_id=send.action.group_id,
        member_id=getattr(send.action, "member_id", None),
        payload={"action": send.action.to_payload(), "missing": missing}, now=now)


def _reserve_passed(conn: Connection, passed: dict[tuple[int, int], list[Any]], at: datetime
                    ) -> dict[tuple[int, int, int], str]:
    """Each stage passed reserves its reward while stock lasts — ``"reserved"`` or
    ``"sold_out"`` per (campaign, member, position); a stage settled for them before is left
    out. The stage's row is locked while its stock is handed out: never more than the stock."""
    rows = [{"campaign_id": c, "member_id": m, "position": int(st["position"]),
             "reward": str(st["reward"]), "status": "reserved", "created_at": at}
            for (c, m), stages in passed.items() for st in stages]
    made = insert_ignore_returning(conn, fission_rewards, rows,
                                   ["campaign_id", "member_id", "position"],
                                   ["id", "campaign_id", "member_id", "position"])
    per_stage: dict[tuple[int, int], list[Any]] = defaultdict(list)
    for r in sorted(made, key=lambda r: int(r.id)):
        per_stage[(int(r.campaign_id), int(r.position))].append(r)
    outcomes: dict[tuple[int, int, int], str] = {}
    for (c, position), rewarded in sorted(per_stage.items()):
        here = ((fission_stages.c.campaign_id == c) & (fission_stages.c.position == position))
        taken, stock = conn.execute(select(fission_stages.c.taken, fission_stages.c.stock)
                                    .where(here).with_for_update()).one()
        granted = max(0, min(len(rewarded), int(stock) - int(taken)))
        if granted:
            conn.execute(update(fission_stages).where(here)
                         .values(taken=fission_stages.c.taken + granted))
        _update_ids(conn, fission_rewards, [r.id for r in rewarded[granted:]],
                    status="sold_out")
        outcomes.update(((c, int(r.member_id), position),
                         "reserved" if i < granted else "sold_out")
                        for i, r in enumerate(rewarded))
    return outcomes



FOLLOW_BATCH = 50


def follow_up(uow: UnitOfWork, *, adapter_for: Callable[[str], PlatformAdapter],
              capabilities: CapabilityLookup, now: datetime, public_url: str) -> int:
    """The loop's steps that need the platform or a link, for the worker: a newcomer who
    came through a code gets their own code and poster with the welcome; a reserved reward
    sends its claim link privately, and the first stage also the completers' invitation and
    tag. Each step is marked done in the transaction that queues its messages (a second
    worker finds it done). Returns how many steps were taken."""
    return (_welcome_newcomers(uow, adapter_for=adapter_for, capabilities=capabilities,
                               now=now, public_url=public_url)
            + _follow_rewards(uow, adapter_for=adapter_for, capabilities=capabilities,
                              now=now, public_url=public_url))


def _poster_url(public_url: str, token: str | None) -> str:
    return f"{public_url.rstrip('/')}/fission/p/{token}.png" if public_url and token else ""


def share_url(public_url: str, token: str | None) -> str:
    """Where a participant uploads the screenshot of their shared poster."""
    return f"{public_url.rstrip('/')}/fission/s/{token}" if public_url and token else ""


def _welcome_newcomers(uow: UnitOfWork, *, adapter_for: Callable[[str], PlatformAdapter],
                       capabilities: CapabilityLookup, now: datetime, public_url: str) -> int:
    """Each newcomer is taken by one worker (a conditional UPDATE) before the platform makes
    their code: a crash after that loses one welcome, never sends two."""
    with uow.read() as conn:
        due = conn.execute(
            select(fission_invites.c.id, fission_invites.c.campaign_id,
                   fission_invites.c.invitee_id, fission_invites.c.group_id,
                   fission_campaigns.c.status)
            .join(fission_campaigns, fission_campaigns.c.id == fission_invites.c.campaign_id)
            .where(fission_invites.c.welcome_due.is_(True))
            .order_by(fission_invites.c.id).limit(FOLLOW_BATCH)).all()
    taken = 0
    for invite_id, campaign_id, member_id, group_id, status in due:
        with uow.write() as conn:
            if not conn.execute(update(fission_invites).where(
                    fission_invites.c.id == invite_id, fission_invites.c.welcome_due.is_(True))
                    .values(welcome_due=False)).rowcount:
                continue  # another worker has them
        taken += 1
        if status != ACTIVE:
            continue  # paused or ended: nobody new takes part
        try:
            mine = do_join(uow, actor=SYSTEM, adapter_for=adapter_for,
                           campaign_id=int(campaign_id), member_id=int(member_id), now=now)
        except (PlatformError, ServiceError) as exc:
            log.warning("fission %s: no code for newcomer %s: %s", campaign_id, member_id, exc)
            with uow.write() as conn:
                audit.record(conn, actor=SYSTEM.label, action="fission.welcome_failed",
                             object_type="campaign", object_id=int(campaign_id),
                             detail={"member": int(member_id), "error": str(exc)[:200]})
            continue
        with uow.write() as conn:
            campaign = access_campaign(conn, actor=SYSTEM, campaign_id=int(campaign_id))
            platform = str(campaign["platform"])
            can = capabilities(platform)
            outbox.enqueue(conn, platform=platform, capabilities=can, now=now,
                           key_prefix=f"fission-welcome:{invite_id}", actions=_welcome(
                               conn, campaign, mine, group_id=int(group_id), can=can,
                               public_url=public_url))
    return taken


def _welcome(conn: Connection, campaign: dict[str, Any], mine: dict[str, Any], *,
             group_id: int, can: frozenset[Capability], public_url: str
             ) -> list[tuple[str, Action]]:
    """A newcomer's welcome with the first stage, their link, their poster (a picture where
    the platform sends one, else its address) and, with a share task, their upload link."""
    first = next((st for st in campaign["stages"] if st["kind"] == INVITES),
                 campaign["stages"][0])
    poster = _poster_url(public_url, mine["token"])
    picture = bool(poster) and Capability.SEND_IMAGE in can
    template = text_of(campaign["texts"], "welcome")
    if poster and not picture and "{poster}" not in template:
        template += POSTER_LINE
    shared = share_stage(campaign["plan"])
    share = share_url(public_url, mine["token"]) if shared else ""
    if share and "{share}" not in template:
        template += SHARE_LINE
    member_id = int(mine["member_id"])
    text = fill(template, name=member_name(conn, member_id), campaign=campaign["name"],
                invites=first["invites"], reward=first["reward"], link=mine["link"],
                poster=poster, share=share, share_reward=shared["reward"] if shared else "")
    return tell(can, group_id=group_id, member_id=member_id, text=text,
                attachments=({"type": "image", "url": poster},) if picture else ())


def _follow_rewards(uow: UnitOfWork, *, adapter_for: Callable[[str], PlatformAdapter],
                    capabilities: CapabilityLookup, now: datetime, public_url: str) -> int:
    """Each reserved reward is taken by one worker (its claim token set in a conditional
    UPDATE) before the completers' code is made and the messages queued."""
    with uow.read() as conn:
        due = conn.execute(
            select(fission_rewards.c.id, fission_rewards.c.campaign_id,
                   fission_rewards.c.member_id, fission_rewards.c.position)
            .where(fission_rewards.c.status == "reserved",
                   fission_rewards.c.claim_sent_at.is_(None))
            .order_by(fission_rewards.c.id).limit(FOLLOW_BATCH)).all()
    taken = 0
    for reward_id, campaign_id, member_id, position in due:
        token, digest = _new_claim_token()
        with uow.write() as conn:
            if not conn.execute(update(fission_rewards).where(
                    fission_rewards.c.id == reward_id, fission_rewards.c.status == "reserved",
                    fission_rewards.c.claim_sent_at.is_(None))
                    .values(claim_hash=digest, claim_sent_at=now)).rowcount:
                continue
            campaign = access_campaign(conn, actor=SYSTEM, campaign_id=int(campaign_id))
        taken += 1
        completers = (campaign["completers_group_id"]
                      if position in completing(campaign["plan"]) else None)
        link = "" if completers is None else _completers_link(uow, campaign, adapter_for)
        with uow.write() as conn:
            actions = _reward_messages(conn, campaign=campaign, member_id=int(member_id),
                                       reward_id=int(reward_id), token=token,
                                       completers_link=link, public_url=public_url, at=now)
            platform = str(campaign["platform"])
            outbox.enqueue(conn, platform=platform, actions=actions, now=now,
                           capabilities=capabilities(platform),
                           key_prefix=f"fission-reward:{reward_id}")
    return taken


def _reward_messages(conn: Connection, *, campaign: dict[str, Any], member_id: int,
                     reward_id: int, token: str, completers_link: str, public_url: str,
                     at: datetime) -> list[tuple[str, Action]]:
    """The claim link (privately: never in the group), and for a completer the invitation
    to the completers' group — or a staff task when no code could be made — and the tag."""
    reward = conn.execute(select(fission_rewards.c.reward, fission_rewards.c.position).where(
        fission_rewards.c.id == reward_id)).one()
    name = member_name(conn, member_id)
    home = home_group(conn, campaign, member_id)
    actions: list[tuple[str, Action]] = [(RULE, SendPrivate(
        group_id=home, member_id=member_id,
        text=fill(text_of(campaign["texts"], "claim"), name=name, campaign=campaign["name"],
                  reward=reward.reward, link=claim_link(public_url, token))))]
    completers = campaign["completers_group_id"]
    if reward.position not in completing(campaign["plan"]) or completers is None:
        return actions
    group_name = conn.execute(select(groups.c.name).where(groups.c.id == completers)
                              ).scalar_one()
    if completers_link:
        actions.append((RULE, SendPrivate(group_id=home, member_id=member_id, text=fill(
            text_of(campaign["texts"], "completers"), name=name, campaign=campaign["name"],
            group=group_name, link=completers_link))))
    else:
        actions.append((RULE, HandToStaff(
            group_id=home, member_id=member_id,
            title=f"邀请 {name} 进完成者群「{group_name}」",
            reason=f"完成了「{campaign['name']}」，但完成者群的邀请链接没能生成")))
    tag = campaign["completers_tag"] or f"裂变完成/{campaign['name'][:50]}"
    try:
        tags.do_tag_member(conn, actor=SYSTEM, member_id=member_id, tag=tag,
                           reason=f"完成「{campaign['name']}」")
    except ServiceError as exc:  # a rule tag of that name follows its rule, not us
        log.warning("fission %s: completers' tag %r not put on: %s", campaign["id"], tag, exc)
    return actions


def home_group(conn: Connection, campaign: dict[str, Any], member_id: int) -> int:
    """The campaign group the member is in (a private message goes through its bot)."""
    found = conn.execute(select(memberships.c.group_id).where(
        memberships.c.member_id == member_id, memberships.c.left_at.is_(None),
        memberships.c.group_id.in_(campaign["group_ids"]))
        .order_by(memberships.c.id.desc())).scalar()
    return int(found) if found is not None else int(campaign["group_ids"][0])


def _completers_link(uow: UnitOfWork, campaign: dict[str, Any],
                     adapter_for: Callable[[str], PlatformAdapter]) -> str:
    """The completers' group's join link, made through the platform the first time."""
    with uow.read() as conn:
        if campaign["completers_code_id"] is not None:
            link = conn.execute(select(join_codes_table.c.qr_code).where(
                join_codes_table.c.id == campaign["completers_code_id"])).scalar()
            if link:
                return str(link)
    adapter = adapter_for(str(campaign["platform"]))
    channel = f"{CODE_PREFIX}{campaign['id']}done"  # not a participant's: never credited
    try:
        made = join_codes.do_create_join_code(
            uow, actor=SYSTEM, adapter=adapter, account=campaign["account"], channel=channel,
            chats=[campaign["completers_group_id"]],
            capacity=max(join_codes.limits_of(adapter).capacities),
            remark=f"{campaign['name'][:50]}完成者")
    except (PlatformError, ServiceError) as exc:
        with uow.read() as conn:  # another worker may have just made it
            made_meanwhile = conn.execute(select(join_codes_table.c.qr_code).where(
                join_codes_table.c.channel == channel, join_codes_table.c.qr_code != "")
            ).scalar()
        if made_meanwhile:
            return str(made_meanwhile)
        log.warning("fission %s: no join code for the completers' group: %s",
                    campaign["id"], exc)
        return ""
    with uow.write() as conn:
        conn.execute(update(fission_campaigns).where(
            fission_campaigns.c.id == campaign["id"]).values(completers_code_id=made["id"]))
    return str(made["qr_code"])


# --- the claim form -------------------------------------------------------------------------


def _claim_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _new_claim_token() -> tuple[str, str]:
    """A claim link's token and the digest kept of it (never the token itself)."""
    token = secrets.token_urlsafe(24)
    return token, _claim_hash(token)


def claim_link(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/claim/{token}"


def claim_form(conn: Connection, *, token: str) -> dict[str, Any]:
    """What a claim link shows (the campaign and the reward, nothing personal); a used or
    unknown link is NotFound/Conflict."""
    if not TOKEN.match(token):
        raise NotFound("this claim link is not valid (it may have been replaced by a newer one)")
    row = conn.execute(
        select(fission_rewards.c.id, fission_rewards.c.reward, fission_rewards.c.status,
               fission_rewards.c.claimed_at, fission_campaigns.c.name.label("campaign"))
        .join(fission_campaigns, fission_campaigns.c.id == fission_rewards.c.campaign_id)
        .where(fission_rewards.c.claim_hash == _claim_hash(token))).mappings().first()
    if row is None:
        raise NotFound("this claim link is not valid (it may have been replaced by a newer one)")
    if row["claimed_at"] is not None:
        raise Conflict("this claim link has been used")
    if row["status"] != "reserved":
        raise Conflict("this reward is no longer waiting to be claimed")
    return dict(row)


TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")  # what secrets.token_urlsafe makes
PHONE = re.compile(r"^\+?[0-9][0-9 -]{4,18}[0-9]$")


def do_claim(conn: Connection, *, token: str, name: str, phone: str, address: str,
             now: datetime) -> dict[str, Any]:
    """The member's name, phone and address for their reward; the link works once."""
    form = claim_form(conn, token=token)
    name, phone, address = name.strip(), phone.strip(), address.strip()
    for field, value in (("name", name), ("phone", phone), ("address", address)):
        if "\ufffd" in value or text_problem(value):  # undecodable bytes, NUL, a surrogate
            raise InvalidInput("{field}: holds characters that are not text; type it again",
                               field=field)
    if not 1 <= len(name) <= 32:
        raise InvalidInput("name: 1–32 characters")
    if not PHONE.match(phone):
        raise InvalidInput("phone: digits, e.g. 13800138000")
    if not 4 <= len(address) <= 200:
        raise InvalidInput("address: 4–200 characters")
    if not conn.execute(update(fission_rewards).where(
            fission_rewards.c.id == form["id"], fission_rewards.c.claimed_at.is_(None),
            fission_rewards.c.claim_hash == _claim_hash(token))
            .values(claim={"name": name, "phone": phone, "address": address},
                    claimed_at=now, updated_at=now)).rowcount:
        raise Conflict("this claim link has been used")
    audit.record(conn, actor=SYSTEM.label, action="fission.claim", object_type="reward",
                 object_id=form["id"], detail={"via": "claim link"})
    return {**form, "claimed_at": now}


def do_new_claim_link(conn: Connection, *, actor: Actor, reward_id: int, public_url: str,
                      now: datetime) -> dict[str, Any]:
    """A fresh claim link for a reserved reward (the old one stops working): for staff to
    send by hand when the private message could not go, or was lost. Returns the ``link``
    and the reward's ``campaign_id``."""
    actor.require(Permission.OPERATE)
    row = conn.execute(select(fission_rewards.c.status, fission_rewards.c.claimed_at,
                              fission_rewards.c.campaign_id).where(
        fission_rewards.c.id == reward_id)).first()
    if row is None:
        raise NotFound("reward {reward_id} not found", reward_id=reward_id)
    if row.status != "reserved" or row.claimed_at is not None:
        raise Conflict("reward {reward_id} is not waiting to be claimed", reward_id=reward_id)
    token, digest = _new_claim_token()
    conn.execute(update(fission_rewards).where(fission_rewards.c.id == reward_id).values(
        claim_hash=digest, claim_sent_at=now))
    audit.record(conn, actor=actor.label, action="fission.claim_link", object_type="reward",
                 object_id=reward_id)
    return {"link": claim_link(public_url, token), "campaign_id": int(row.campaign_id)}


def reserve_reward(conn: Connection, *, campaign_id: int, member_id: int, position: int,
                   reward: str, at: datetime) -> str | None:
    """A stage reached: its reward reserved while stock lasts (one conditional UPDATE, so
    never more than the stock whatever runs at once) — ``"reserved"``, ``"sold_out"`` (kept
    as such, so it is not tried again), or None when this stage was settled for them before.
    """
    rewarded = insert_ignore(conn, fission_rewards, {
        "campaign_id": campaign_id, "member_id": member_id, "position": position,
        "reward": reward, "status": "reserved", "created_at": at},
        ["campaign_id", "member_id", "position"])
    if rewarded is None:
        return None
    if conn.execute(update(fission_stages).where(
            fission_stages.c.campaign_id == campaign_id, fission_stages.c.position == position,
            fission_stages.c.taken < fission_stages.c.stock)
            .values(taken=fission_stages.c.taken + 1)).rowcount:
        return "reserved"
    conn.execute(update(fission_rewards).where(fission_rewards.c.id == rewarded)
                 .values(status="sold_out"))
    return "sold_out"


def valid_count(conn: Connection, campaign_id: int, inviter: int) -> int:
    return int(conn.execute(_VALID_COUNT, {"c": campaign_id, "m": inviter}).scalar() or 0)


def member_name(conn: Connection, member_id: int) -> str:
    return _names(conn, {member_id})[member_id]


# --- the report -----------------------------------------------------------------------------


TREE_LIMIT = 1_000  # nodes the report's tree carries (the biggest branches first)


def report(conn: Connection, *, actor: Actor, campaign_id: int, tz: ZoneInfo
           ) -> dict[str, Any]:
    """Participants, invites, completions, stock left, K-factor, top inviters, the daily
    curve and the invitation tree (who brought whom, with depth). Counted in the database
    where it can be: a campaign of 100,000 participants has 300,000 invites."""
    campaign = access_campaign(conn, actor=actor, campaign_id=campaign_id)
    window = _window(campaign)
    # the invites' days and statuses in one pass (the counts by status come from it)
    daily, counts = _per_day(conn, campaign_id, tz, window)
    sent, valid = sum(counts.values()), counts.get("valid", 0)
    fp, fr = fission_participants, fission_rewards
    participants = int(conn.execute(select(func.count()).select_from(fp).where(
        fp.c.campaign_id == campaign_id)).scalar_one())
    by_status: Counter[str] = Counter()
    handed: Counter[int] = Counter()  # rewards reserved or shipped, per stage
    claimed = 0
    for position, status, n, filled in conn.execute(
            select(fr.c.position, fr.c.status, func.count(), func.count(fr.c.claimed_at))
            .where(fr.c.campaign_id == campaign_id).group_by(fr.c.position, fr.c.status)):
        by_status[str(status)] += int(n)
        claimed += int(filled)
        if status in ("reserved", "shipped"):
            handed[int(position)] += int(n)
    # when each completed (a task done, stock or not): seconds since they took part and the
    # day, worked out in the database in one pass (100,000 completers' times read back as
    # datetimes cost a fifth of the report)
    mine_r = (fr.c.campaign_id == campaign_id) & fr.c.position.in_(
        sorted(completing(campaign["plan"])))
    done = (select(fr.c.member_id, func.min(fr.c.created_at).label("at")).where(mine_r)
            .group_by(fr.c.member_id).subquery())
    completions: Counter[str] = Counter()
    spans: list[float] = []
    day = local_date(conn, done.c.at, tz, window)
    for seconds, on in _raw(conn, select(
            epoch_seconds(done.c.at) - epoch_seconds(fp.c.created_at), day)
            .select_from(done).outerjoin(fp, (fp.c.campaign_id == campaign_id)
                                         & (fp.c.member_id == done.c.member_id))):
        completions[str(on)] += 1
        if seconds is not None:
            spans.append(float(seconds) / 3600)
    for d, n in completions.items():
        daily[d]["completions"] += n
    completed = sum(completions.values())
    top = [(int(m), int(n)) for m, n in conn.execute(
        select(fission_participants.c.member_id, fission_participants.c.valid_invites).where(
            fission_participants.c.campaign_id == campaign_id,
            fission_participants.c.valid_invites > 0)
        .order_by(fission_participants.c.valid_invites.desc(),
                  fission_participants.c.member_id).limit(20))]
    tree, max_depth, nodes = _tree(conn, campaign_id)
    names = _names(conn, {m for m, _n in top} | nodes)
    return {
        "campaign": campaign, "participants": participants, "invites_sent": sent,
        "first_number": conn.execute(
            select(members.c.number).join(fp, fp.c.member_id == members.c.id)
            .where(fp.c.campaign_id == campaign_id)
            .order_by(fp.c.created_at, fp.c.member_id).limit(1)).scalar(),
        "valid_invites": valid, "pending": counts.get("pending", 0),
        "revoked": counts.get("revoked", 0),
        "completed": completed,
        "completion_rate": round(completed / participants, 4) if participants else 0.0,
        "stages": campaign["stages"],
        "rewards": {status: by_status[status]
                    for status in ("reserved", "shipped", "cancelled", "sold_out")}
        | {"claimed": claimed},
        "cost": _cost(campaign["stages"], handed, valid),
        "hours_to_complete": _hours_to_complete(spans),
        "precision": _precision(conn, campaign_id, top, names, valid),
        "k_factor": k_factor(participants=participants, invites_sent=sent,
                             valid_invites=valid),
        "top_inviters": [{"member_id": m, "name": names.get(m, ""), "valid_invites": n}
                         for m, n in top],
        "max_depth": max_depth,
        "daily": _daily(daily),
        "tree": [_named(node, names) for node in tree],
        "tree_cut": len(nodes) >= TREE_LIMIT,
    }


def _names(conn: Connection, ids: set[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    ordered = sorted(ids)
    for i in range(0, len(ordered), 1000):  # well inside every database's parameter limit
        found.update((int(r.id), shown_name(r.display_name, r.number)) for r in conn.execute(
            select(members.c.id, members.c.display_name, members.c.number)
            .where(members.c.id.in_(ordered[i:i + 1000]))))
    return found


def _named(node: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
    return {"member_id": node["member_id"], "name": names.get(node["member_id"], ""),
            "brought": node["brought"], "children": [_named(k, names) for k in node["children"]]}


def _tree(conn: Connection, campaign_id: int
          ) -> tuple[list[dict[str, Any]], int, set[int]]:
    """Who brought whom (valid invites; one inviter per invitee makes it a tree): the
    biggest branches first, breadth first, at most ``TREE_LIMIT`` nodes, each with how many
    it ``brought`` in all (the whole branch below it, shown or not); how deep it goes; the
    members shown. Participants who brought nobody and were brought by nobody are read
    only when the branches leave room for them (100,000 ids fetched to show none)."""
    children: dict[int, list[int]] = defaultdict(list)
    # plain integers straight from the driver: 300,000 edges through the result's row
    # processing took as long as the rest of the report
    edges = _raw(conn, select(fission_invites.c.inviter_id, fission_invites.c.invitee_id).where(
        fission_invites.c.campaign_id == campaign_id,
        fission_invites.c.status == "valid").order_by(fission_invites.c.invitee_id))
    for inviter, invitee in edges:
        children[inviter].append(invitee)
    parent = {invitee: inviter for inviter, invitee in edges}
    roots = sorted(m for m in children if m not in parent)
    if len(roots) < TREE_LIMIT:
        roots += _alone(conn, campaign_id, children, parent, TREE_LIMIT - len(roots))
    # breadth first from the roots, a level at a time (each member once, loops cut)
    seen = set(roots)
    order: list[int] = []
    depth, level = -1, roots
    while level:
        depth += 1
        order += level
        below: list[int] = []
        for member_id in level:
            for kid in children.get(member_id, ()):
                if kid not in seen:
                    seen.add(kid)
                    below.append(kid)
        level = below
    size = dict.fromkeys(order, 1)
    for member_id in reversed(order):
        above = parent.get(member_id)
        if above is not None and above in size:
            size[above] += size[member_id]
    made: dict[int, dict[str, Any]] = {}
    top: list[dict[str, Any]] = []
    pending: deque[tuple[int | None, int]] = deque(  # only the biggest can be shown
        (None, r) for r in heapq.nsmallest(TREE_LIMIT, roots, key=lambda m: (-size[m], m)))
    shown: set[int] = set()
    while pending and len(shown) < TREE_LIMIT:
        above, member_id = pending.popleft()
        node: dict[str, Any] = {"member_id": member_id, "brought": size[member_id] - 1,
                                "children": []}
        made[member_id] = node
        shown.add(member_id)
        (top if above is None else made[above]["children"]).append(node)
        pending.extend((member_id, k) for k in sorted(
            (k for k in children.get(member_id, ()) if k in size and k not in shown),
            key=lambda k: (-size[k], k)))
    return top, max(depth, 0), shown


def _alone(conn: Connection, campaign_id: int, children: Mapping[int, list[int]],
           parent: Mapping[int, int], need: int) -> list[int]:
    """Up to ``need`` participants outside every branch (nobody brought them, they brought
    nobody), the lowest ids first: read until there are enough."""
    found: list[int] = []
    result = conn.execute(select(fission_participants.c.member_id).where(
        fission_participants.c.campaign_id == campaign_id)
        .order_by(fission_participants.c.member_id))
    try:
        for (member_id,) in result:
            if member_id not in children and member_id not in parent:
                found.append(int(member_id))
                if len(found) >= need:
                    break
    finally:
        result.close()
    return found


def _window(campaign: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """The span a campaign's times fall in, for the local-day expressions (exact within it;
    read from the campaign, not from min/max over its rows, which cost a pass each)."""
    last = max(utcnow(), campaign["ended_at"] or utcnow())
    return campaign["created_at"] - timedelta(days=31), last + timedelta(days=31)


def _per_day(conn: Connection, campaign_id: int, tz: ZoneInfo,
             window: tuple[datetime, datetime]) -> tuple[dict[str, Counter[str]], Counter[str]]:
    """The daily counts in the team's time zone, grouped in the database, and the invites
    by status (the same pass)."""
    daily: dict[str, Counter[str]] = defaultdict(Counter)
    statuses: Counter[str] = Counter()
    joined = local_date(conn, fission_invites.c.joined_at, tz, window)
    valid = local_date(conn, fission_invites.c.valid_at, tz, window)
    for d_join, d_valid, status, n in conn.execute(  # one pass over the invites
            select(joined, valid, fission_invites.c.status, func.count())
            .where(fission_invites.c.campaign_id == campaign_id)
            .group_by(joined, valid, fission_invites.c.status)):
        statuses[str(status)] += int(n)
        daily[str(d_join)]["joins"] += int(n)
        if status == "valid":
            daily[str(d_valid)]["valid"] += int(n)
    fp = fission_participants
    day = local_date(conn, fp.c.created_at, tz, window)
    for d, n in conn.execute(select(day, func.count()).where(
            fp.c.campaign_id == campaign_id).group_by(day)):
        daily[str(d)]["participants"] += int(n)
    return daily, statuses


def _raw(conn: Connection, stmt: Any) -> list[Any]:
    """Rows as the driver gives them, for plain integers by the hundred thousand (a result's
    row processing costs as much as the query there)."""
    result = conn.execute(stmt)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def _daily(daily: dict[str, Counter[str]]) -> list[dict[str, Any]]:
    """Per day: participants, joins through codes, valid invites, completions, and that day's
    K (valid newcomers that day ÷ everyone taking part by then)."""
    out, taking_part = [], 0
    for day in sorted(daily):
        counts = daily[day]
        taking_part += counts["participants"]
        out.append({"day": day, **{k: counts[k] for k in ("participants", "joins", "valid",
                                                          "completions")},
                    "k": round(counts["valid"] / taking_part, 4) if taking_part else 0.0})
    return out


def _cost(stages: list[dict[str, Any]], handed: Counter[int], valid: int
          ) -> dict[str, int | None]:
    """What the rewards handed out (reserved or shipped) cost, and per valid newcomer."""
    total = sum(int(s["cost_cents"]) * handed[int(s["position"])] for s in stages)
    return {"total_cents": total,
            "per_valid_newcomer_cents": round(total / valid) if valid else None}


PRECISION_STEPS = ("spoke", "enrolled", "deposit", "purchase")


def _precision(conn: Connection, campaign_id: int, top: list[tuple[int, int]],
               names: dict[int, str], every: int) -> dict[str, Any]:
    """What the valid newcomers did after joining, per inviter (the top 20 by valid invites)
    and in all, with the activity funnel's meanings: ``spoke`` in the group they joined,
    ``enrolled`` in an activity, paid a ``deposit`` (an enrolment's or an intention
    deposit), made a ``purchase`` (an order) — each after joining."""
    fi = fission_invites
    # joined straight to the invites (no subquery: SQLite built one of 300,000 rows per use)
    mine = (fi.c.campaign_id == campaign_id) & (fi.c.status == "valid")
    did: dict[str, set[int]] = {step: set() for step in PRECISION_STEPS}
    did["spoke"].update(conn.execute(
        select(fi.c.invitee_id).join(memberships, (memberships.c.member_id == fi.c.invitee_id)
                                     & (memberships.c.group_id == fi.c.group_id))
        .where(mine, memberships.c.first_message_at >= fi.c.joined_at)).scalars())
    for member_id, deposit in conn.execute(
            select(fi.c.invitee_id, enrolments.c.deposit_fen)
            .join(enrolments, enrolments.c.member_id == fi.c.invitee_id)
            .where(mine, enrolments.c.status == "enrolled",
                   enrolments.c.enrolled_at >= fi.c.joined_at)):
        did["enrolled"].add(member_id)
        if deposit > 0:
            did["deposit"].add(member_id)
    for member_id, kind in conn.execute(
            select(fi.c.invitee_id, conversions.c.kind)
            .join(conversions, conversions.c.member_id == fi.c.invitee_id)
            .where(mine, conversions.c.kind.in_(("deposit", "order")),
                   conversions.c.occurred_at >= fi.c.joined_at)):
        did["deposit" if kind == "deposit" else "purchase"].add(member_id)
    brought: dict[int, list[int]] = defaultdict(list)  # the top inviters' newcomers only
    for inviter, invitee in conn.execute(select(fi.c.inviter_id, fi.c.invitee_id).where(
            mine, fi.c.inviter_id.in_([m for m, _n in top]))).all():
        brought[int(inviter)].append(int(invitee))

    def row(people: list[int]) -> dict[str, Any]:
        n = len(people)
        counts = {step: sum(1 for m in people if m in did[step]) for step in PRECISION_STEPS}
        return {"valid": n, **counts,
                **{f"{step}_rate": round(counts[step] / n, 4) if n else 0.0
                   for step in PRECISION_STEPS}}

    return {"all": {"valid": every, **{step: len(did[step]) for step in PRECISION_STEPS},
                    **{f"{step}_rate": round(len(did[step]) / every, 4) if every else 0.0
                       for step in PRECISION_STEPS}},
            "inviters": [{"member_id": m, "name": names.get(m, ""), **row(brought[m])}
                         for m, _n in top]}


def _hours_to_complete(spans: list[float]) -> dict[str, float | None]:
    """From taking part to completing: the median and the slowest tenth."""
    if not spans:
        return {"median": None, "p90": None}
    spans = sorted(spans)
    return {"median": round(statistics.median(spans), 2),
            "p90": round(spans[min(len(spans) - 1, int(len(spans) * 0.9))], 2)}


def list_rewards(conn: Connection, *, actor: Actor, campaign_id: int) -> list[dict[str, Any]]:
    """The rewards to hand out (and the stages that ran out), with the member's phone —
    masked for staff who may not see personal data."""
    actor.require(Permission.VIEW)
    access_campaign(conn, actor=actor, campaign_id=campaign_id)
    pii = actor.can(Permission.MEMBER_PII)
    # the claim link's private message, by the key the worker queued it under
    claim_key = (literal("fission-reward:", String) + cast(fission_rewards.c.id, String)
                 + literal(f":{RULE}:0", String))
    return [{**{k: v for k, v in r.items() if k != "claim_hash"},
             "phone": r["phone"] if pii else mask_phone(r["phone"]),
             "claim": _claim_shown(r["claim"] or {}, pii)}
            for r in conn.execute(
                select(fission_rewards, members.c.number, members.c.display_name,
                       members.c.phone, outbox_table.c.status.label("claim_send"))
                .join(members, members.c.id == fission_rewards.c.member_id)
                .outerjoin(outbox_table, outbox_table.c.idempotency_key == claim_key)
                .where(fission_rewards.c.campaign_id == campaign_id)
                .order_by(fission_rewards.c.id)).mappings()]


def _claim_shown(claim: dict[str, str], pii: bool) -> dict[str, str]:
    """What the member filled in; for staff who may not see personal data, the name's
    first character, the phone and the address masked as for leads."""
    if pii or not claim:
        return dict(claim)
    return {"name": claim.get("name", "")[:1] + "**",
            "phone": mask_phone(claim.get("phone", "")),
            "address": mask_address(claim.get("address", ""))}


REWARD_MOVES = {"shipped": ("reserved",), "cancelled": ("reserved", "shipped"),
                "reserved": ("cancelled",)}


def do_update_reward(conn: Connection, *, actor: Actor, reward_id: int, status: str,
                     tracking: str = "", now: datetime) -> dict[str, Any]:
    """Ship a reserved reward (with its tracking number), cancel one (its stock returns),
    or restore a cancelled one (while stock lasts)."""
    actor.require(Permission.OPERATE)
    if status not in REWARD_MOVES:
        raise InvalidInput("status: shipped, cancelled or reserved, not {status!r}",
                           status=status)
    row = conn.execute(select(fission_rewards).where(fission_rewards.c.id == reward_id)
                       ).mappings().first()
    if row is None:
        raise NotFound("reward {reward_id} not found", reward_id=reward_id)
    if row["status"] not in REWARD_MOVES[status]:
        raise Conflict("reward {reward_id} is {current}; it cannot become {status}",
                       reward_id=reward_id, current=row["status"], status=status)
    stage = (fission_stages.c.campaign_id == row["campaign_id"]) & (
        fission_stages.c.position == row["position"])
    if status == "cancelled":
        conn.execute(update(fission_stages).where(stage)
                     .values(taken=fission_stages.c.taken - 1))
    elif status == "reserved" and not conn.execute(update(fission_stages).where(
            stage, fission_stages.c.taken < fission_stages.c.stock)
            .values(taken=fission_stages.c.taken + 1)).rowcount:
        raise Conflict("the stock of {reward} has run out", reward=row["reward"])
    conn.execute(update(fission_rewards).where(fission_rewards.c.id == reward_id).values(
        status=status, updated_at=now,
        tracking=tracking.strip()[:64] if status == "shipped" else row["tracking"]))
    audit.record(conn, actor=actor.label, action=f"fission.reward_{status}",
                 object_type="reward", object_id=reward_id,
                 detail={"campaign": row["campaign_id"], "tracking": tracking.strip()[:64]})
    rewards = list_rewards(conn, actor=actor, campaign_id=int(row["campaign_id"]))
    return next(r for r in rewards if r["id"] == reward_id)


REWARD_HEADERS = {"zh-CN": ("会员编号", "昵称", "手机", "奖品", "状态", "收件人", "收件手机",
                            "收货地址", "快递单号", "达成时间"),
                  "en": ("number", "name", "phone", "reward", "status", "recipient",
                         "recipient phone", "address", "tracking", "reached at")}


def export_rewards(conn: Connection, *, actor: Actor, campaign_id: int, fmt: str,
                   tz: ZoneInfo, language: str = "zh-CN") -> bytes:
    """The rewards for the warehouse, as CSV or XLSX (cells from members' names are made
    inert; phones masked for staff who may not see them)."""
    if fmt not in ("csv", "xlsx"):
        raise InvalidInput("format: csv or xlsx")
    rows = list_rewards(conn, actor=actor, campaign_id=campaign_id)
    table = [[r["number"], r["display_name"], r["phone"], r["reward"],
              translate(f"fission.reward_status.{r['status']}", language),
              r["claim"].get("name", ""), r["claim"].get("phone", ""),
              r["claim"].get("address", ""), r["tracking"],
              r["created_at"].astimezone(tz).strftime("%Y-%m-%d %H:%M")] for r in rows]
    header = REWARD_HEADERS.get(language, REWARD_HEADERS["en"])
    if fmt == "csv":
        return spreadsheets.csv_bytes(header, table)
    return spreadsheets.xlsx_bytes("rewards", header, table)
