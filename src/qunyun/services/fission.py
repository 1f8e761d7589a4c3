"""Fission campaigns (F20) and their attribution (F21): the one writer of the fission tables.

A campaign runs over entry groups of one platform. A participant gets their own join code
(WeCom's ``state``, a Telegram named invite link, a sandbox code — ``join_codes`` makes it,
named ``fx<campaign>m<number>``); a newcomer who joins through it is an invite of theirs
(``note_join``, from ingest — the first inviter of a person only, never a rejoin or the
participant themselves). An invite is valid once the invitee has stayed ``valid_hours``
(``validate_due``, the worker; at once when the campaign says 0) and not blacklisted;
leaving before takes it back (``note_leave``). Each valid invite tells the inviter their
progress in the group; reaching a stage reserves its reward while stock lasts (one
conditional UPDATE: never more rewards than stock, whatever runs at once).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, func, select, update

from qunyun.adapters.platforms.base import PlatformAdapter
from qunyun.adapters.storage.sql import insert_ignore
from qunyun.adapters.storage.tables import (
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
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.domain.actions import Action, CapabilityLookup, SendText
from qunyun.domain.fission import (
    DONE,
    PROGRESS,
    SOLD_OUT,
    TAKEN_BACK,
    FissionError,
    Stage,
    check_stages,
    code_parts,
    fill,
    k_factor,
    next_stage,
    participant_code,
)
from qunyun.domain.staff import Permission
from qunyun.i18n import translate
from qunyun.services import audit, blacklist, join_codes, outbox, posters, spreadsheets
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.leads import mask_phone
from qunyun.services.members import shown_name
from qunyun.services.users import Actor

ACTIVE, PAUSED, ENDED = "active", "paused", "ended"
RULE = "fission"


# --- campaigns ----------------------------------------------------------------------------


def do_create_campaign(conn: Connection, *, actor: Actor, name: str, group_ids: Sequence[int],
                       stages: Sequence[Stage], account: str, valid_hours: int = 0,
                       completers_group_id: int | None = None,
                       now: datetime) -> dict[str, Any]:
    """A campaign over entry groups of one platform; ``account`` is the connected corp or
    bot (the sandbox's any name) that makes the participants' codes, as for join codes."""
    actor.require(Permission.OPERATE)
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
        poster={},
        created_by=actor.label, created_at=now).returning(fission_campaigns.c.id))
        .scalar_one())
    conn.execute(fission_stages.insert(), [
        {"campaign_id": campaign_id, "position": i, "invites": s.invites, "reward": s.reward,
         "stock": s.stock, "taken": 0} for i, s in enumerate(checked)])
    audit.record(conn, actor=actor.label, action="fission.create", object_type="campaign",
                 object_id=campaign_id, detail={"name": name, "groups": ids,
                                                "stages": [s.to_dict() for s in checked]})
    return access_campaign(conn, actor=actor, campaign_id=campaign_id)


def _stages(conn: Connection, campaign_id: int) -> list[dict[str, Any]]:
    return [{**dict(r), "left": max(0, int(r["stock"]) - int(r["taken"]))}
            for r in conn.execute(_STAGES, {"c": campaign_id}).mappings()]


def access_campaign(conn: Connection, *, actor: Actor, campaign_id: int) -> dict[str, Any]:
    actor.require(Permission.VIEW)
    row = conn.execute(select(fission_campaigns).where(
        fission_campaigns.c.id == campaign_id)).mappings().first()
    if row is None:
        raise NotFound("fission campaign {campaign_id} not found", campaign_id=campaign_id)
    names = dict(conn.execute(select(groups.c.id, groups.c.name).where(
        groups.c.id.in_(row["group_ids"]))).all())
    participants = conn.execute(select(func.count()).select_from(fission_participants).where(
        fission_participants.c.campaign_id == campaign_id)).scalar_one()
    return {**dict(row), "stages": _stages(conn, campaign_id),
            "groups": [{"id": g, "name": names.get(g, "")} for g in row["group_ids"]],
            "participants": int(participants)}


def list_campaigns(conn: Connection, *, actor: Actor) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    ids = conn.execute(select(fission_campaigns.c.id)
                       .order_by(fission_campaigns.c.id.desc())).scalars().all()
    return [access_campaign(conn, actor=actor, campaign_id=int(i)) for i in ids]


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
                       status=campaign["status"])
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
            "link": made["qr_code"], "join_code_id": made["id"], "created_at": now},
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
    nickname = _name(conn, member_id)
    key = {"campaign": campaign_id, "name": campaign["name"], "nickname": nickname,
           "link": mine["link"], "settings": settings,
           "background": background.stat().st_mtime_ns if background and background.is_file()
           else 0}
    return posters.cached(folder, key, lambda: posters.render(
        settings=settings, title=campaign["name"], nickname=nickname, link=mine["link"],
        background=background))


# --- the loop (ingest and the worker) ---------------------------------------------------------


# the statements every credited join runs, built once
_BY_CODE = (select(fission_participants.c.member_id, members.c.display_name, members.c.number,
                   fission_campaigns)
            .join(fission_campaigns,
                  fission_campaigns.c.id == fission_participants.c.campaign_id)
            .join(members, members.c.id == fission_participants.c.member_id)
            .where(fission_participants.c.code == bindparam("code")))
_VALID_COUNT = select(func.count()).select_from(fission_invites).where(
    fission_invites.c.campaign_id == bindparam("c"), fission_invites.c.inviter_id == bindparam("m"),
    fission_invites.c.status == "valid")
_STAGES = select(fission_stages).where(fission_stages.c.campaign_id == bindparam("c")).order_by(
    fission_stages.c.position)


def note_join(conn: Connection, *, group_id: int, member_id: int, channel: str,
              rejoin: bool, at: datetime, invitee_name: str = "",
              barred: bool = False) -> list[tuple[str, Action]]:
    """A join through a participant's code is their invite (pending until valid; valid at
    once, and the inviter told, where the campaign says 0 hours). Cheap for every other
    join: only a channel shaped like a participant's code is looked up. ``barred``: the
    newcomer is blacklisted (ingest knows it already)."""
    if code_parts(channel) is None:
        return []
    found = conn.execute(_BY_CODE, {"code": channel}).mappings().first()
    if (found is None or found["status"] != ACTIVE or group_id not in found["group_ids"]
            or found["member_id"] == member_id or rejoin):
        return []  # paused or ended, another group, their own code, someone coming back
    campaign_id, hours = int(found["id"]), int(found["valid_hours"])
    at_once = hours == 0
    inserted = insert_ignore(conn, fission_invites, {
        "campaign_id": campaign_id, "inviter_id": found["member_id"], "invitee_id": member_id,
        "group_id": group_id, "joined_at": at, "valid_at": at + timedelta(hours=hours),
        "status": ("revoked" if barred else "valid") if at_once else "pending",
        "reason": "blacklisted" if at_once and barred else ""}, ["campaign_id", "invitee_id"])
    if inserted is None or not at_once or barred:
        return []  # someone else invited them first; or wait for the window
    inviter_name = shown_name(found["display_name"], found["number"])
    return _progress(conn, campaign_id=campaign_id, inviter=int(found["member_id"]),
                     inviter_name=inviter_name, invitee_name=invitee_name or "好友",
                     group_id=group_id, at=at)


def note_leave(conn: Connection, *, group_id: int, member_id: int,
               at: datetime) -> list[tuple[str, Action]]:
    """Leaving within the window takes the invite back, and the inviter is told."""
    rows = conn.execute(select(fission_invites.c.id, fission_invites.c.campaign_id,
                               fission_invites.c.inviter_id).where(
        fission_invites.c.invitee_id == member_id, fission_invites.c.group_id == group_id,
        fission_invites.c.status == "pending")).all()
    actions: list[tuple[str, Action]] = []
    for r in rows:
        conn.execute(update(fission_invites).where(fission_invites.c.id == r.id)
                     .values(status="revoked", reason="left"))
        count = _valid_count(conn, int(r.campaign_id), int(r.inviter_id))
        actions.append((RULE, SendText(
            group_id=group_id, mention_member_ids=(int(r.inviter_id),),
            text=fill(TAKEN_BACK, name=_name(conn, int(r.inviter_id)),
                      invitee=_name(conn, member_id), count=count))))
    return actions


def validate_due(conn: Connection, *, now: datetime, capabilities: CapabilityLookup
                 ) -> int:
    """Pending invites whose window has passed: valid if the invitee is still in the group
    and not blacklisted, else taken back; the inviters are told and rewarded. Returns how
    many were decided."""
    due = conn.execute(select(fission_invites.c.id, fission_campaigns.c.platform)
                       .join(fission_campaigns,
                             fission_campaigns.c.id == fission_invites.c.campaign_id)
                       .where(fission_invites.c.status == "pending",
                              fission_invites.c.valid_at <= now)
                       .order_by(fission_invites.c.valid_at).limit(500)).all()
    for invite_id, platform in due:
        actions = _validate(conn, int(invite_id), now)
        if actions:
            outbox.enqueue(conn, platform=str(platform), actions=actions,
                           capabilities=capabilities(str(platform)),
                           key_prefix=f"fission:{invite_id}", now=now)
    return len(due)


def _validate(conn: Connection, invite_id: int, at: datetime) -> list[tuple[str, Action]]:
    invite = conn.execute(select(fission_invites).where(fission_invites.c.id == invite_id)
                          ).mappings().one()
    stayed = conn.execute(select(memberships.c.id).where(
        memberships.c.member_id == invite["invitee_id"],
        memberships.c.group_id == invite["group_id"], memberships.c.left_at.is_(None))
    ).first() is not None
    barred = blacklist.is_blacklisted(conn, int(invite["invitee_id"]), at)
    # decided once, whoever else looks at it (another worker waits on the row, then finds
    # it no longer pending)
    pending = (fission_invites.c.id == invite_id) & (fission_invites.c.status == "pending")
    if not stayed or barred:
        conn.execute(update(fission_invites).where(pending).values(
            status="revoked", reason="blacklisted" if barred else "left"))
        return []
    if not conn.execute(update(fission_invites).where(pending)
                        .values(status="valid")).rowcount:
        return []
    inviter = int(invite["inviter_id"])
    return _progress(conn, campaign_id=int(invite["campaign_id"]), inviter=inviter,
                     inviter_name=_name(conn, inviter),
                     invitee_name=_name(conn, int(invite["invitee_id"])),
                     group_id=int(invite["group_id"]), at=at)


def _progress(conn: Connection, *, campaign_id: int, inviter: int, inviter_name: str,
              invitee_name: str, group_id: int, at: datetime) -> list[tuple[str, Action]]:
    """An invite became valid: reserve the rewards of every stage the inviter has reached
    and not been settled for (a count read beside another worker's may lag by one; the
    next valid invite catches up), and say how far they are."""
    count = _valid_count(conn, campaign_id, inviter)
    stages = _stages(conn, campaign_id)
    says: list[str] = []
    for stage in stages:
        if int(stage["invites"]) > count:
            break
        rewarded = insert_ignore(conn, fission_rewards, {
            "campaign_id": campaign_id, "member_id": inviter, "position": stage["position"],
            "reward": stage["reward"], "status": "reserved", "created_at": at},
            ["campaign_id", "member_id", "position"])
        if rewarded is None:
            continue  # this stage was settled for them before
        took = conn.execute(update(fission_stages).where(
            fission_stages.c.campaign_id == campaign_id,
            fission_stages.c.position == stage["position"],
            fission_stages.c.taken < fission_stages.c.stock)
            .values(taken=fission_stages.c.taken + 1)).rowcount
        if took:
            says.append(fill(DONE, name=inviter_name, reward=stage["reward"], count=count))
        else:  # the stock ran out: no reward, and they are told so
            conn.execute(update(fission_rewards).where(fission_rewards.c.id == rewarded)
                         .values(status="sold_out"))
            says.append(fill(SOLD_OUT, name=inviter_name, reward=stage["reward"],
                             count=count))
    if not says:
        ahead = next_stage(stages, count)
        if ahead is not None:
            says.append(fill(PROGRESS, name=inviter_name, invitee=invitee_name, count=count,
                             left=int(ahead["invites"]) - count, reward=ahead["reward"]))
    return [(RULE, SendText(group_id=group_id, mention_member_ids=(inviter,), text=text))
            for text in says]


def _valid_count(conn: Connection, campaign_id: int, inviter: int) -> int:
    return int(conn.execute(_VALID_COUNT, {"c": campaign_id, "m": inviter}).scalar_one())


def _name(conn: Connection, member_id: int) -> str:
    row = conn.execute(select(members.c.display_name, members.c.number).where(
        members.c.id == member_id)).one()
    return shown_name(row.display_name, row.number)


# --- the report -----------------------------------------------------------------------------


def report(conn: Connection, *, actor: Actor, campaign_id: int, tz: ZoneInfo
           ) -> dict[str, Any]:
    """Participants, invites, completions, stock left, K-factor, top inviters, the daily
    curve and the invitation tree (who brought whom, with depth)."""
    campaign = access_campaign(conn, actor=actor, campaign_id=campaign_id)
    people = {int(r.member_id): r.created_at for r in conn.execute(
        select(fission_participants.c.member_id, fission_participants.c.created_at).where(
            fission_participants.c.campaign_id == campaign_id))}
    invites = [dict(r) for r in conn.execute(select(fission_invites).where(
        fission_invites.c.campaign_id == campaign_id).order_by(fission_invites.c.id))
        .mappings()]
    rewards = [dict(r) for r in conn.execute(select(fission_rewards).where(
        fission_rewards.c.campaign_id == campaign_id)).mappings()]
    # everyone in the campaign, read by joining (an IN list of 80,000 ids is past
    # PostgreSQL's parameter limit)
    involved = select(fission_participants.c.member_id).where(
        fission_participants.c.campaign_id == campaign_id).union(
        select(fission_invites.c.invitee_id).where(
            fission_invites.c.campaign_id == campaign_id)).subquery()
    names = {int(r.id): shown_name(r.display_name, r.number) for r in conn.execute(
        select(members.c.id, members.c.display_name, members.c.number)
        .join(involved, involved.c[0] == members.c.id))}
    valid = [i for i in invites if i["status"] == "valid"]
    completed = {r["member_id"] for r in rewards if r["position"] == 0}
    by_inviter = Counter(i["inviter_id"] for i in valid)
    daily: dict[str, Counter[str]] = defaultdict(Counter)
    for i in invites:
        daily[i["joined_at"].astimezone(tz).date().isoformat()]["joins"] += 1
        if i["status"] == "valid":
            daily[i["valid_at"].astimezone(tz).date().isoformat()]["valid"] += 1
    for r in rewards:
        if r["position"] == 0:
            daily[r["created_at"].astimezone(tz).date().isoformat()]["completions"] += 1
    for at in people.values():
        daily[at.astimezone(tz).date().isoformat()]["participants"] += 1
    parent = {i["invitee_id"]: i["inviter_id"] for i in valid}

    def depth(member_id: int) -> int:
        seen, d = set(), 0
        while member_id in parent and member_id not in seen:
            seen.add(member_id)
            member_id, d = parent[member_id], d + 1
        return d

    roots = sorted(m for m in set(people) | set(parent.values()) if m not in parent)

    children: dict[int, list[int]] = defaultdict(list)
    for kid, inviter in sorted(parent.items()):
        children[inviter].append(kid)

    def node(member_id: int, seen: set[int], level: int = 0) -> dict[str, Any]:
        """One branch (one inviter per invitee makes it a tree; ``seen`` guards a loop);
        shown 100 levels deep at most (``max_depth`` says how deep it really goes)."""
        seen.add(member_id)
        kids = children.get(member_id, []) if level < 100 else []
        return {"member_id": member_id, "name": names.get(member_id, ""),
                "children": [node(k, seen, level + 1) for k in kids if k not in seen]}

    first = min(people, key=lambda m: (people[m], m)) if people else None
    return {
        "campaign": campaign, "participants": len(people), "invites_sent": len(invites),
        "first_number": conn.execute(select(members.c.number).where(
            members.c.id == first)).scalar() if first is not None else None,
        "valid_invites": len(valid),
        "pending": sum(1 for i in invites if i["status"] == "pending"),
        "revoked": sum(1 for i in invites if i["status"] == "revoked"),
        "completed": len(completed),
        "completion_rate": round(len(completed) / len(people), 4) if people else 0.0,
        "stages": campaign["stages"],
        "rewards": {"reserved": sum(1 for r in rewards if r["status"] == "reserved"),
                    "sold_out": sum(1 for r in rewards if r["status"] == "sold_out")},
        "k_factor": k_factor(participants=len(people), invites_sent=len(invites),
                             valid_invites=len(valid)),
        "top_inviters": [{"member_id": m, "name": names.get(m, ""), "valid_invites": n}
                         for m, n in by_inviter.most_common(20)],
        "max_depth": max((depth(m) for m in parent), default=0),
        "daily": [{"day": d, **{k: daily[d][k] for k in ("participants", "joins", "valid",
                                                          "completions")}}
                  for d in sorted(daily)],
        "tree": [node(r, set()) for r in roots],
    }


def list_rewards(conn: Connection, *, actor: Actor, campaign_id: int) -> list[dict[str, Any]]:
    """The rewards to hand out (and the stages that ran out), with the member's phone —
    masked for staff who may not see personal data."""
    actor.require(Permission.VIEW)
    access_campaign(conn, actor=actor, campaign_id=campaign_id)
    pii = actor.can(Permission.MEMBER_PII)
    return [{**dict(r), "phone": r["phone"] if pii else mask_phone(r["phone"])}
            for r in conn.execute(
                select(fission_rewards, members.c.number, members.c.display_name,
                       members.c.phone)
                .join(members, members.c.id == fission_rewards.c.member_id)
                .where(fission_rewards.c.campaign_id == campaign_id)
                .order_by(fission_rewards.c.id)).mappings()]


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


REWARD_HEADERS = {"zh-CN": ("会员编号", "昵称", "手机", "奖品", "状态", "快递单号", "达成时间"),
                  "en": ("number", "name", "phone", "reward", "status", "tracking",
                         "reached at")}


def export_rewards(conn: Connection, *, actor: Actor, campaign_id: int, fmt: str,
                   tz: ZoneInfo, language: str = "zh-CN") -> bytes:
    """The rewards for the warehouse, as CSV or XLSX (cells from members' names are made
    inert; phones masked for staff who may not see them)."""
    if fmt not in ("csv", "xlsx"):
        raise InvalidInput("format: csv or xlsx")
    rows = list_rewards(conn, actor=actor, campaign_id=campaign_id)
    table = [[r["number"], r["display_name"], r["phone"], r["reward"],
              translate(f"fission.reward_status.{r['status']}", language), r["tracking"],
              r["created_at"].astimezone(tz).strftime("%Y-%m-%d %H:%M")] for r in rows]
    header = REWARD_HEADERS.get(language, REWARD_HEADERS["en"])
    if fmt == "csv":
        return spreadsheets.csv_bytes(header, table)
    return spreadsheets.xlsx_bytes("rewards", header, table)
