"""WeCom join codes (群活码): a code over up to five groups, rotated to the emptiest as they
fill, with spare groups a person adds when the code runs out."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select, update

from qunyun.adapters.platforms.wecom.adapter import WecomAdapter
from qunyun.adapters.platforms.wecom.client import WecomApiError
from qunyun.adapters.storage.tables import (
    groups,
    join_codes,
    memberships,
    staff_tasks,
)
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.clock import utcnow
from qunyun.domain.staff import Permission
from qunyun.services import audit, tasks
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.users import SYSTEM, Actor
from qunyun.services.wecom import MAX_JOIN_CODE_GROUPS, PLATFORM, corp_secrets_exist

log = logging.getLogger(__name__)


# --- join codes (群活码) -------------------------------------------------------------------


def _wecom_group(conn: Connection, ref: str | int) -> dict[str, Any]:
    stmt = select(groups.c.id, groups.c.external_id, groups.c.name, groups.c.capacity).where(
        groups.c.platform == PLATFORM)
    text = str(ref)
    row = conn.execute(stmt.where(groups.c.id == int(text)) if text.isdigit() else
                       stmt.where(groups.c.external_id == text)).mappings().first()
    if row is None:
        raise InvalidInput("group {ref!r}: not a WeCom group qunyun has synced", ref=ref)
    return dict(row)


def _sizes(conn: Connection, chat_ids: Sequence[str]) -> dict[str, int]:
    if not chat_ids:
        return {}
    rows = conn.execute(select(groups.c.external_id, func.count(memberships.c.id))
                        .select_from(groups)
                        .outerjoin(memberships, (memberships.c.group_id == groups.c.id)
                                   & memberships.c.left_at.is_(None))
                        .where(groups.c.platform == PLATFORM,
                               groups.c.external_id.in_(list(chat_ids)))
                        .group_by(groups.c.external_id)).all()
    return {str(r[0]): int(r[1]) for r in rows}


def do_create_join_code(uow: UnitOfWork, *, actor: Actor, adapter: WecomAdapter, corp_id: str,
                        channel: str, chats: Sequence[str | int],
                        spares: Sequence[str | int] = (), capacity: int = 200,
                        fill_ratio: float = 0.9, remark: str = "",
                        room_base_name: str = "") -> dict[str, Any]:
    """A 群活码 for one channel: the first up-to-5 groups attached, the rest kept as spares to
    rotate in. ``state`` is the channel, so every member it brings is traced to it."""
    actor.require(Permission.OPERATE)
    channel = channel.strip()
    if not channel or len(channel) > 30:
        raise InvalidInput("channel: 1–30 characters (it is the join code's state)")
    if capacity not in (100, 200, 500):
        raise InvalidInput("capacity: 100 (WeChat QR joins), 200 or 500 (group size limits)")
    if not 0.5 <= fill_ratio <= 1.0:
        raise InvalidInput("fill_ratio: between 0.5 and 1.0")
    if not chats:
        raise InvalidInput("chats: at least one group")
    with uow.read() as conn:
        if not corp_secrets_exist(conn, corp_id):
            raise NotFound("WeCom corp {corp_id!r} is not connected", corp_id=corp_id)
        listed = [_wecom_group(conn, c)["external_id"] for c in [*chats, *spares]]
    if len(set(listed)) != len(listed):
        raise InvalidInput("chats: a group is listed twice")
    attached, spare = listed[:MAX_JOIN_CODE_GROUPS], listed[MAX_JOIN_CODE_GROUPS:]
    name = (room_base_name or remark or channel)[:64]
    # the row first, as "creating": a crash between WeCom's answer and our write leaves a
    # row that says so (and names the channel, the code's state in WeCom), not an orphan
    code_id = _claim_channel(uow, corp_id=corp_id, channel=channel, values={
        "remark": (remark or channel)[:64], "chat_ids": attached, "spare_chat_ids": spare,
        "full_chat_ids": [], "capacity": capacity, "fill_ratio": fill_ratio,
        "auto_create_room": True, "room_base_name": name, "qr_code": "", "config_id": "",
        "rotations": 0})
    client = adapter.client(corp_id)
    try:
        config_id = client.add_join_way({
            "scene": 2, "remark": (remark or channel)[:30], "auto_create_room": 1,
            "room_base_name": name[:40], "room_base_id": 1, "chat_id_list": attached,
            "state": channel})
    except BaseException:
        with uow.write() as conn:  # WeCom made nothing: the channel is free again
            conn.execute(update(join_codes).where(join_codes.c.id == code_id)
                         .values(state="deleted", updated_at=utcnow()))
        raise
    with uow.write() as conn:  # WeCom has the code: record it before anything else can fail
        conn.execute(update(join_codes).where(join_codes.c.id == code_id)
                     .values(config_id=config_id, updated_at=utcnow()))
    qr = str(client.get_join_way(config_id).get("qr_code", ""))
    with uow.write() as conn:
        conn.execute(update(join_codes).where(join_codes.c.id == code_id)
                     .values(qr_code=qr, state="active", updated_at=utcnow()))
        audit.record(conn, actor=actor.label, action="join_code.create",
                     object_type="join_code", object_id=code_id,
                     detail={"channel": channel, "config_id": config_id, "groups": attached,
                             "spares": spare})
        return _join_code(conn, int(code_id))


def _claim_channel(uow: UnitOfWork, *, corp_id: str, channel: str,
                   values: dict[str, Any]) -> int:
    """The channel's row, in state "creating" — a new one, or the row of a deleted code of
    the same channel (one row per channel and corp). Refused while the channel has an active
    code or one being created."""
    now = utcnow()
    with uow.write() as conn:
        row = conn.execute(select(join_codes.c.id, join_codes.c.state).where(
            join_codes.c.platform == PLATFORM, join_codes.c.account == corp_id,
            join_codes.c.channel == channel)).first()
        if row is not None and row.state == "active":
            raise Conflict("channel {channel!r} already has a join code", channel=channel)
        if row is not None and row.state == "creating":
            raise Conflict(
                "channel {channel!r}: join code {id} is being created, or its creation "
                "stopped half-way; if it stays so, delete it (its WeCom code, if any, has "
                "state {channel!r})", channel=channel, id=row.id)
        if row is not None:  # a deleted code's row
            conn.execute(update(join_codes).where(join_codes.c.id == row.id).values(
                **values, state="creating", created_at=now, updated_at=now))
            return int(row.id)
        return int(conn.execute(join_codes.insert().values(
            platform=PLATFORM, account=corp_id, channel=channel, state="creating",
            created_at=now, updated_at=now, **values).returning(join_codes.c.id)).scalar_one())


def _join_code(conn: Connection, code_id: int) -> dict[str, Any]:
    row = conn.execute(select(join_codes).where(join_codes.c.id == code_id)).mappings().first()
    if row is None:
        raise NotFound("join code {code_id} not found", code_id=code_id)
    code = dict(row)
    all_ids = [*code["chat_ids"], *code["spare_chat_ids"], *code["full_chat_ids"]]
    sizes = _sizes(conn, all_ids)
    names = dict(conn.execute(select(groups.c.external_id, groups.c.name).where(
        groups.c.platform == PLATFORM, groups.c.external_id.in_(all_ids))).all()) \
        if all_ids else {}
    joined: dict[str, int] = dict(conn.execute(
        select(groups.c.external_id, func.count(memberships.c.id)).select_from(memberships)
        .join(groups, groups.c.id == memberships.c.group_id)
        .where(memberships.c.channel == code["channel"], groups.c.platform == PLATFORM)
        .group_by(groups.c.external_id)).all())
    code["groups"] = [{"chat_id": c, "name": names.get(c, ""), "members": sizes.get(c, 0),
                       "fill": round(sizes.get(c, 0) / code["capacity"], 3),
                       "via_code": int(joined.get(c, 0)),
                       "role": "attached" if c in code["chat_ids"] else
                       "spare" if c in code["spare_chat_ids"] else "full"}
                      for c in all_ids]
    code["members_via_code"] = sum(int(v) for v in joined.values())
    return code


def list_join_codes(conn: Connection, *, actor: Actor) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    ids = conn.execute(select(join_codes.c.id).where(join_codes.c.state.in_(("active",
                                                                             "creating")))
                       .order_by(join_codes.c.id)).scalars()
    return [_join_code(conn, int(i)) for i in ids]


def access_join_code(conn: Connection, *, actor: Actor, code_id: int) -> dict[str, Any]:
    actor.require(Permission.VIEW)
    return _join_code(conn, code_id)


@dataclass
class Rotation:
    code_id: int
    channel: str
    filled: list[str]
    added: list[str]
    attached: list[str]
    task_id: int | None = None


def rotate_join_codes(uow: UnitOfWork, *, adapter: WecomAdapter,
                      actor: Actor = SYSTEM) -> list[Rotation]:
    """Detach groups that reached ``fill_ratio`` of capacity and attach spares in their place
    (always sending the whole list: update_join_way overwrites). With no spare left, a staff
    task asks for a new group; WeCom's auto_create_room keeps the code working meanwhile."""
    actor.require(Permission.OPERATE)
    with uow.read() as conn:
        codes = [dict(r) for r in conn.execute(select(join_codes).where(
            join_codes.c.state == "active", join_codes.c.platform == PLATFORM)).mappings()]
        sizes = _sizes(conn, [c for code in codes for c in code["chat_ids"]])
    done: list[Rotation] = []
    for code in codes:
        limit = code["capacity"] * code["fill_ratio"]
        filled = [c for c in code["chat_ids"] if sizes.get(c, 0) >= limit]
        if not filled:
            continue
        keep = [c for c in code["chat_ids"] if c not in filled]
        spares = list(code["spare_chat_ids"])
        added: list[str] = []
        while spares and len(keep) + len(added) < MAX_JOIN_CODE_GROUPS:
            added.append(spares.pop(0))
        attached = keep + added
        rotation = Rotation(int(code["id"]), code["channel"], filled, added, attached)
        if attached:
            adapter.client(code["account"]).update_join_way({
                "config_id": code["config_id"], "scene": 2, "remark": code["remark"][:30],
                "auto_create_room": 1, "room_base_name": code["room_base_name"][:40],
                "room_base_id": 1, "chat_id_list": attached, "state": code["channel"]})
        now = utcnow()
        with uow.write() as conn:
            if not spares and not _open_task(conn, "join_code_refill", int(code["id"])):
                rotation.task_id = tasks.create_task(
                    conn, kind="join_code_refill",
                    title=f"为渠道「{code['channel']}」的群活码新建群 (join code needs a new "
                          "group)", reason=f"{len(filled)} 个群已满，备用群已用完",
                    platform=PLATFORM,
                    payload={"join_code_id": code["id"], "channel": code["channel"]}, now=now)
            if attached:
                conn.execute(update(join_codes).where(join_codes.c.id == code["id"]).values(
                    chat_ids=attached, spare_chat_ids=spares,
                    full_chat_ids=[*code["full_chat_ids"], *filled],
                    rotations=join_codes.c.rotations + 1, updated_at=now))
                audit.record(conn, actor=actor.label, action="join_code.rotate",
                             object_type="join_code", object_id=code["id"],
                             detail={"filled": filled, "added": added, "attached": attached})
        done.append(rotation)
    return done


def _open_task(conn: Connection, kind: str, code_id: int) -> bool:
    for payload in conn.execute(select(staff_tasks.c.payload).where(
            staff_tasks.c.kind == kind, staff_tasks.c.status == tasks.OPEN)).scalars():
        if dict(payload or {}).get("join_code_id") == code_id:
            return True
    return False


def do_add_spares(uow: UnitOfWork, *, actor: Actor, code_id: int,
                  chats: Sequence[str | int]) -> dict[str, Any]:
    actor.require(Permission.OPERATE)
    with uow.write() as conn:
        code = _join_code(conn, code_id)
        ids = [_wecom_group(conn, c)["external_id"] for c in chats]
        known = {*code["chat_ids"], *code["spare_chat_ids"], *code["full_chat_ids"]}
        fresh = [c for c in ids if c not in known]
        conn.execute(update(join_codes).where(join_codes.c.id == code_id).values(
            spare_chat_ids=[*code["spare_chat_ids"], *fresh], updated_at=utcnow()))
        audit.record(conn, actor=actor.label, action="join_code.spares",
                     object_type="join_code", object_id=code_id, detail={"added": fresh})
        return _join_code(conn, code_id)


def do_delete_join_code(uow: UnitOfWork, *, actor: Actor, adapter: WecomAdapter,
                        code_id: int) -> None:
    actor.require(Permission.OPERATE)
    with uow.read() as conn:
        code = _join_code(conn, code_id)
    try:
        if code["config_id"]:  # a creation that stopped before WeCom answered has none
            adapter.client(code["account"]).del_join_way(code["config_id"])
    except WecomApiError as exc:
        if exc.code != 41044:  # already gone in WeCom
            raise
    with uow.write() as conn:
        conn.execute(update(join_codes).where(join_codes.c.id == code_id)
                     .values(state="deleted", updated_at=utcnow()))
        audit.record(conn, actor=actor.label, action="join_code.delete",
                     object_type="join_code", object_id=code_id,
                     detail={"channel": code["channel"]})
