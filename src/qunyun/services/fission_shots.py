"""A share stage's screenshots (F20): the one writer of ``fission_shots``.

Seeds 001/002: besides inviting friends, a participant may share their poster (to WeChat
Moments) and show a screenshot, which a person checks. No platform hands a bot the
pictures people post in a WeChat group, so the screenshot comes through the participant's
own upload link (``/fission/s/<token>``, the token of their poster) or from staff who were
sent it privately (``do_submit``). It waits in the campaign's review queue; approving
reserves the stage's reward (stock permitting: the same conditional UPDATE as an invite
stage) and tells the member privately; declining says why and where to upload again.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, update

from qunyun.adapters.storage.tables import (
    fission_participants,
    fission_rewards,
    fission_shots,
    members,
)
from qunyun.domain.actions import Action, CapabilityLookup, SendPrivate
from qunyun.domain.fission import fill, next_stage, share_stage, text_of
from qunyun.domain.staff import Permission
from qunyun.i18n import Term
from qunyun.services import audit, outbox, posters
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.fission import (
    ACTIVE,
    RULE,
    access_campaign,
    by_token,
    home_group,
    member_name,
    reserve_reward,
    share_url,
    valid_count,
)
from qunyun.services.users import SYSTEM, Actor

PENDING, APPROVED, DECLINED = "pending", "approved", "declined"
FOLDER = "shots"  # under the posters folder


def _by_token(conn: Connection, token: str) -> dict[str, Any]:
    found = by_token(conn, token)
    if found is None:
        raise NotFound("this upload link is not valid")
    return {"campaign_id": found[0], "member_id": found[1]}


def _latest(conn: Connection, campaign_id: int, member_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(fission_shots).where(
        fission_shots.c.campaign_id == campaign_id, fission_shots.c.member_id == member_id)
        .order_by(fission_shots.c.id.desc()).limit(1)).mappings().first()
    return dict(row) if row is not None else None


def share_form(conn: Connection, *, token: str) -> dict[str, Any]:
    """The participant's own page (their upload link): how far they are — valid invites,
    the next stage, their rewards — and, with a share task, where their screenshot stands.
    Nothing about anyone else. On platforms where no bot may tell them in the group or
    privately (WeCom), this is where they see their progress."""
    who = _by_token(conn, token)
    campaign = access_campaign(conn, actor=SYSTEM, campaign_id=who["campaign_id"])
    stage = share_stage(campaign["plan"])
    latest = _latest(conn, who["campaign_id"], who["member_id"])
    count = valid_count(conn, who["campaign_id"], who["member_id"])
    ahead = next_stage(campaign["plan"], count)
    mine = [{"reward": r.reward, "status": r.status} for r in conn.execute(
        select(fission_rewards.c.reward, fission_rewards.c.status).where(
            fission_rewards.c.campaign_id == who["campaign_id"],
            fission_rewards.c.member_id == who["member_id"]).order_by(
            fission_rewards.c.position))]
    return {"campaign": campaign["name"], "open": campaign["status"] == ACTIVE,
            "valid_invites": count, "rewards": mine,
            "next": {"reward": ahead["reward"], "left": int(ahead["invites"]) - count}
            if ahead else None,
            "share": stage is not None, "reward": stage["reward"] if stage else "",
            "status": latest["status"] if latest else "",
            "reason": latest["reason"] if latest else ""}


def do_upload(conn: Connection, *, token: str, data: bytes, folder: Path,
              now: datetime) -> dict[str, Any]:
    """The participant's own screenshot, through their upload link."""
    who = _by_token(conn, token)
    return _submit(conn, actor=SYSTEM, campaign_id=who["campaign_id"],
                   member_id=who["member_id"], data=data, folder=folder, now=now)


def do_submit(conn: Connection, *, actor: Actor, campaign_id: int, member_id: int,
              data: bytes, folder: Path, now: datetime) -> dict[str, Any]:
    """A screenshot a member sent staff privately (WeChat, where no bot sees it), put in
    the queue on their behalf."""
    actor.require(Permission.OPERATE)
    return _submit(conn, actor=actor, campaign_id=campaign_id, member_id=member_id,
                   data=data, folder=folder, now=now)


def _submit(conn: Connection, *, actor: Actor, campaign_id: int, member_id: int, data: bytes,
            folder: Path, now: datetime) -> dict[str, Any]:
    campaign = access_campaign(conn, actor=SYSTEM, campaign_id=campaign_id)
    stage = share_stage(campaign["plan"])
    if stage is None:
        raise Conflict("campaign {campaign_id} has no share task", campaign_id=campaign_id)
    if campaign["status"] != ACTIVE:
        raise Conflict("fission campaign {campaign_id} is {status}", campaign_id=campaign_id,
                       status=Term("fission.status", campaign["status"]))
    if conn.execute(select(fission_participants.c.id).where(
            fission_participants.c.campaign_id == campaign_id,
            fission_participants.c.member_id == member_id)).first() is None:
        raise NotFound("member {member_id} does not take part in campaign {campaign_id}",
                       member_id=member_id, campaign_id=campaign_id)
    latest = _latest(conn, campaign_id, member_id)
    if latest is not None and latest["status"] in (PENDING, APPROVED):
        raise Conflict("a screenshot is already {status}",
                       status=Term("fission.shot_status", latest["status"]))
    shot_id = int(conn.execute(fission_shots.insert().values(
        campaign_id=campaign_id, member_id=member_id, position=int(stage["position"]),
        file="", status=PENDING, reason="", created_at=now, decided_by="")
        .returning(fission_shots.c.id)).scalar_one())
    name = posters.store_picture(folder / FOLDER, f"{campaign_id}/{shot_id}.png", data,
                                 field="screenshot", side=1600)
    conn.execute(update(fission_shots).where(fission_shots.c.id == shot_id).values(file=name))
    audit.record(conn, actor=actor.label, action="fission.shot", object_type="campaign",
                 object_id=campaign_id, detail={"member": member_id, "shot": shot_id})
    return _shot(conn, shot_id)


def _shot(conn: Connection, shot_id: int) -> dict[str, Any]:
    row = conn.execute(select(fission_shots, members.c.number, members.c.display_name)
                       .join(members, members.c.id == fission_shots.c.member_id)
                       .where(fission_shots.c.id == shot_id)).mappings().first()
    if row is None:
        raise NotFound("screenshot {shot_id} not found", shot_id=shot_id)
    return dict(row)


def list_shots(conn: Connection, *, actor: Actor, campaign_id: int,
               status: str = PENDING) -> list[dict[str, Any]]:
    """The review queue (oldest first), or the screenshots already decided."""
    actor.require(Permission.VIEW)
    access_campaign(conn, actor=actor, campaign_id=campaign_id)
    if status not in (PENDING, APPROVED, DECLINED, ""):
        raise InvalidInput("status: pending, approved or declined")
    stmt = (select(fission_shots, members.c.number, members.c.display_name)
            .join(members, members.c.id == fission_shots.c.member_id)
            .where(fission_shots.c.campaign_id == campaign_id)
            .order_by(fission_shots.c.id).limit(500))
    if status:
        stmt = stmt.where(fission_shots.c.status == status)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def shot_image(conn: Connection, *, actor: Actor, shot_id: int, folder: Path) -> bytes:
    actor.require(Permission.VIEW)
    shot = _shot(conn, shot_id)
    path = folder / FOLDER / str(shot["file"])
    if not shot["file"] or not path.is_file():
        raise NotFound("screenshot {shot_id} not found", shot_id=shot_id)
    return path.read_bytes()


def do_review(conn: Connection, *, actor: Actor, shot_id: int, approve: bool, reason: str = "",
              capabilities: CapabilityLookup, public_url: str, now: datetime
              ) -> dict[str, Any]:
    """Approve (the share stage's reward is reserved while stock lasts; the claim link
    follows with the worker) or decline with a reason; the member is told privately. A
    screenshot is decided once (a second decision is a conflict)."""
    actor.require(Permission.OPERATE)
    reason = reason.strip()[:200]
    if not approve and not reason:
        raise InvalidInput("reason: say why, the member reads it")
    shot = _shot(conn, shot_id)
    if not conn.execute(update(fission_shots).where(
            fission_shots.c.id == shot_id, fission_shots.c.status == PENDING).values(
            status=APPROVED if approve else DECLINED, reason=reason, decided_at=now,
            decided_by=actor.label)).rowcount:
        raise Conflict("screenshot {shot_id} is already {status}", shot_id=shot_id,
                       status=Term("fission.shot_status", shot["status"]))
    campaign = access_campaign(conn, actor=SYSTEM, campaign_id=int(shot["campaign_id"]))
    stage = next(s for s in campaign["plan"] if int(s["position"]) == shot["position"])
    member_id = int(shot["member_id"])
    name = member_name(conn, member_id)
    if approve:
        outcome = reserve_reward(conn, campaign_id=campaign["id"], member_id=member_id,
                                 position=int(stage["position"]), reward=str(stage["reward"]),
                                 at=now)
        kind = "shot_approved" if outcome == "reserved" else "shot_sold_out"
        text = fill(text_of(campaign["texts"], kind), name=name, reward=stage["reward"])
    else:
        token = conn.execute(select(fission_participants.c.token).where(
            fission_participants.c.campaign_id == campaign["id"],
            fission_participants.c.member_id == member_id)).scalar()
        text = fill(text_of(campaign["texts"], "shot_declined"), name=name, reason=reason,
                    share=share_url(public_url, token))
    told: list[tuple[str, Action]] = [(RULE, SendPrivate(
        group_id=home_group(conn, campaign, member_id), member_id=member_id, text=text))]
    outbox.enqueue(conn, platform=str(campaign["platform"]), actions=told,
                   capabilities=capabilities(str(campaign["platform"])),
                   key_prefix=f"fission-shot:{shot_id}", now=now)
    audit.record(conn, actor=actor.label,
                 action="fission.shot_approved" if approve else "fission.shot_declined",
                 object_type="campaign", object_id=campaign["id"],
                 detail={"member": member_id, "shot": shot_id, "reason": reason})
    return _shot(conn, shot_id)
