"""Join codes (群活码) on any platform that declares ``create_join_code``: one code per
channel over up to the platform's limit of groups, rotated to fresh groups as they fill,
with spare groups a person adds when the code runs out. The channel is the code's name on
the platform (WeCom's ``state``, a Telegram invite link's name), so every member it brings
is traced to it in ``memberships.channel`` — one attribution table for all platforms.

The platform is called between transactions, so the code's row is written first
("creating"): a crash between the platform's answer and our write leaves a row that says so,
not a code nobody knows about."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.exc import IntegrityError

from qunyun.adapters.platforms.base import JoinCodeLimits, JoinCodeSpec, PlatformAdapter
from qunyun.adapters.storage.tables import groups, join_codes, memberships, staff_tasks
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.clock import utcnow
from qunyun.domain.actions import Capability
from qunyun.domain.groups import inviter_number
from qunyun.domain.staff import Permission
from qunyun.services import audit, tasks
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.users import SYSTEM, Actor

ACTIVE, CREATING, DELETED = "active", "creating", "deleted"
REFILL_TASK = "join_code_refill"


def limits_of(adapter: PlatformAdapter) -> JoinCodeLimits:
    """The adapter's join code limits; refused for a platform that cannot make codes."""
    if not adapter.can(Capability.CREATE_JOIN_CODE) or adapter.join_code_limits is None:
        raise InvalidInput("platform {platform!r} cannot make join codes",
                           platform=adapter.name)
    return adapter.join_code_limits


def _group(conn: Connection, platform: str, ref: str | int) -> dict[str, Any]:
    stmt = select(groups.c.id, groups.c.external_id, groups.c.name, groups.c.capacity).where(
        groups.c.platform == platform)
    text = str(ref)
    row = conn.execute(stmt.where(groups.c.id == int(text)) if text.isdigit() else
                       stmt.where(groups.c.external_id == text)).mappings().first()
    if row is None:
        raise InvalidInput("group {ref!r}: not a {platform} group qunyun knows", ref=ref,
                           platform=platform)
    return dict(row)


def _sizes(conn: Connection, platform: str, chat_ids: Sequence[str]) -> dict[str, int]:
    if not chat_ids:
        return {}
    rows = conn.execute(select(groups.c.external_id, func.count(memberships.c.id))
                        .select_from(groups)
                        .outerjoin(memberships, (memberships.c.group_id == groups.c.id)
                                   & memberships.c.left_at.is_(None))
                        .where(groups.c.platform == platform,
                               groups.c.external_id.in_(list(chat_ids)))
                        .group_by(groups.c.external_id)).all()
    return {str(r[0]): int(r[1]) for r in rows}


def _spec(code: Mapping[str, Any], chats: Sequence[str]) -> JoinCodeSpec:
    return JoinCodeSpec(channel=code["channel"], chats=tuple(chats), remark=code["remark"],
                        room_base_name=code["room_base_name"])


def do_create_join_code(uow: UnitOfWork, *, actor: Actor, adapter: PlatformAdapter,
                        account: str, channel: str, chats: Sequence[str | int],
                        spares: Sequence[str | int] = (), capacity: int = 200,
                        fill_ratio: float = 0.9, remark: str = "",
                        room_base_name: str = "") -> dict[str, Any]:
    """A code for one channel: the first groups (up to the platform's limit) attached, the
    rest kept as spares to rotate in."""
    actor.require(Permission.OPERATE)
    limits = limits_of(adapter)
    channel = channel.strip()
    if not channel or len(channel) > 30:
        raise InvalidInput("channel: 1–30 characters (it is the join code's state)")
    if capacity not in limits.capacities:
        raise InvalidInput("capacity: one of {choices}",
                           choices=", ".join(str(c) for c in limits.capacities))
    if not 0.5 <= fill_ratio <= 1.0:
        raise InvalidInput("fill_ratio: between 0.5 and 1.0")
    if not chats:
        raise InvalidInput("chats: at least one group")
    adapter.check_account(account)
    with uow.read() as conn:
        listed = [_group(conn, adapter.name, c)["external_id"] for c in [*chats, *spares]]
    if len(set(listed)) != len(listed):
        raise InvalidInput("chats: a group is listed twice")
    attached, spare = listed[:limits.max_groups], listed[limits.max_groups:]
    name = (room_base_name or remark or channel)[:64]
    values = {"remark": (remark or channel)[:64], "chat_ids": attached,
              "spare_chat_ids": spare, "full_chat_ids": [], "capacity": capacity,
              "fill_ratio": fill_ratio, "auto_create_room": True, "room_base_name": name,
              "qr_code": "", "config_id": "", "rotations": 0}
    code_id = _claim_channel(uow, platform=adapter.name, account=account, channel=channel,
                             values=values)
    try:
        made = adapter.create_join_code(account, _spec({**values, "channel": channel},
                                                       attached))
    except BaseException:
        with uow.write() as conn:  # the platform made nothing: the channel is free again
            conn.execute(update(join_codes).where(join_codes.c.id == code_id)
                         .values(state=DELETED, updated_at=utcnow()))
        raise
    with uow.write() as conn:
        conn.execute(update(join_codes).where(join_codes.c.id == code_id).values(
            config_id=made.code_id, qr_code=made.link, state=ACTIVE, updated_at=utcnow()))
        audit.record(conn, actor=actor.label, action="join_code.create",
                     object_type="join_code", object_id=code_id,
                     detail={"platform": adapter.name, "channel": channel,
                             "config_id": made.code_id, "groups": attached, "spares": spare})
        return _join_code(conn, int(code_id))


def _claim_channel(uow: UnitOfWork, *, platform: str, account: str, channel: str,
                   values: dict[str, Any]) -> int:
    """The channel's row, in state "creating" — a new one, or the row of a deleted code of
    the same channel (one row per channel and account). Refused while the channel has an
    active code or one being created."""
    now = utcnow()
    with uow.write() as conn:
        row = conn.execute(select(join_codes.c.id, join_codes.c.state).where(
            join_codes.c.platform == platform, join_codes.c.account == account,
            join_codes.c.channel == channel)).first()
        if row is not None and row.state == ACTIVE:
            raise Conflict("channel {channel!r} already has a join code", channel=channel)
        if row is not None and row.state == CREATING:
            raise Conflict(
                "channel {channel!r}: join code {id} is being created, or its creation "
                "stopped half-way; if it stays so, delete it (its code on the platform, if "
                "any, is named {channel!r})", channel=channel, id=row.id)
        if row is not None:  # a deleted code's row
            conn.execute(update(join_codes).where(join_codes.c.id == row.id).values(
                **values, state=CREATING, created_at=now, updated_at=now))
            return int(row.id)
        try:
            return int(conn.execute(join_codes.insert().values(
                platform=platform, account=account, channel=channel, state=CREATING,
                created_at=now, updated_at=now, **values).returning(join_codes.c.id))
                .scalar_one())
        except IntegrityError:  # another worker claimed the channel since the look above
            raise Conflict("channel {channel!r}: its join code is being created at this "
                           "moment", channel=channel) from None


def _join_code(conn: Connection, code_id: int) -> dict[str, Any]:
    row = conn.execute(select(join_codes).where(join_codes.c.id == code_id)).mappings().first()
    if row is None:
        raise NotFound("join code {code_id} not found", code_id=code_id)
    code = dict(row)
    platform = code["platform"]
    all_ids = [*code["chat_ids"], *code["spare_chat_ids"], *code["full_chat_ids"]]
    sizes = _sizes(conn, platform, all_ids)
    names = dict(conn.execute(select(groups.c.external_id, groups.c.name).where(
        groups.c.platform == platform, groups.c.external_id.in_(all_ids))).all()) \
        if all_ids else {}
    joined: dict[str, int] = dict(conn.execute(
        select(groups.c.external_id, func.count(memberships.c.id)).select_from(memberships)
        .join(groups, groups.c.id == memberships.c.group_id)
        .where(memberships.c.channel == code["channel"], groups.c.platform == platform)
        .group_by(groups.c.external_id)).all())
    code["groups"] = [{"chat_id": c, "name": names.get(c, ""), "members": sizes.get(c, 0),
                       "fill": round(sizes.get(c, 0) / code["capacity"], 3),
                       "via_code": int(joined.get(c, 0)),
                       "role": "attached" if c in code["chat_ids"] else
                       "spare" if c in code["spare_chat_ids"] else "full"}
                      for c in all_ids]
    code["members_via_code"] = sum(int(v) for v in joined.values())
    return code


def link_for_group(conn: Connection, *, platform: str, chat_id: str) -> str:
    """The newest live shared code that hands out this chat (its link), "" when none: what
    an applicant let in on a platform that holds no join request is sent. Personal codes
    (a member's invitation, a fission participant's) are never handed to someone else."""
    rows = conn.execute(select(join_codes.c.channel, join_codes.c.chat_ids,
                               join_codes.c.qr_code).where(
        join_codes.c.platform == platform, join_codes.c.state == ACTIVE,
        join_codes.c.qr_code != "").order_by(join_codes.c.id.desc())).all()
    return next((str(r.qr_code) for r in rows
                 if chat_id in (r.chat_ids or []) and inviter_number(r.channel) is None), "")


def list_join_codes(conn: Connection, *, actor: Actor,
                    platform: str | None = None) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    stmt = select(join_codes.c.id).where(join_codes.c.state.in_((ACTIVE, CREATING)))
    if platform is not None:
        stmt = stmt.where(join_codes.c.platform == platform)
    return [_join_code(conn, int(i)) for i in conn.execute(stmt.order_by(join_codes.c.id))
            .scalars()]


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


def rotate_join_codes(uow: UnitOfWork, *, adapters: Mapping[str, PlatformAdapter],
                      actor: Actor = SYSTEM) -> list[Rotation]:
    """Detach groups that reached ``fill_ratio`` of capacity and attach spares in their place
    (always sending the whole list: platforms overwrite it). With no spare left, a staff task
    asks for a new group; WeCom's auto_create_room keeps its code working meanwhile."""
    actor.require(Permission.OPERATE)
    makers = {name: a for name, a in adapters.items() if a.can(Capability.CREATE_JOIN_CODE)
              and a.join_code_limits is not None}
    if not makers:
        return []
    with uow.read() as conn:
        codes = [dict(r) for r in conn.execute(select(join_codes).where(
            join_codes.c.state == ACTIVE, join_codes.c.platform.in_(list(makers)))
            .order_by(join_codes.c.id)).mappings()]
        sizes = {(code["platform"], c): n for code in codes
                 for c, n in _sizes(conn, code["platform"], code["chat_ids"]).items()}
    done: list[Rotation] = []
    for code in codes:
        adapter = makers[code["platform"]]
        limits = limits_of(adapter)
        limit = code["capacity"] * code["fill_ratio"]
        filled = [c for c in code["chat_ids"] if sizes.get((code["platform"], c), 0) >= limit]
        if not filled:
            continue
        keep = [c for c in code["chat_ids"] if c not in filled]
        spares = list(code["spare_chat_ids"])
        added: list[str] = []
        while spares and len(keep) + len(added) < limits.max_groups:
            added.append(spares.pop(0))
        attached = keep + added
        rotation = Rotation(int(code["id"]), code["channel"], filled, added, attached)
        link = ""
        if attached:
            link = adapter.update_join_code(code["account"], code["config_id"],
                                            _spec(code, attached)).link
        now = utcnow()
        with uow.write() as conn:
            if not spares and not _open_refill(conn, int(code["id"])):
                rotation.task_id = tasks.create_task(
                    conn, kind=REFILL_TASK,
                    title=f"为渠道「{code['channel']}」的群活码新建群 (join code needs a new "
                          "group)", reason=f"{len(filled)} 个群已满，备用群已用完",
                    platform=code["platform"],
                    payload={"join_code_id": code["id"], "channel": code["channel"]}, now=now)
            if attached:
                conn.execute(update(join_codes).where(join_codes.c.id == code["id"]).values(
                    chat_ids=attached, spare_chat_ids=spares,
                    full_chat_ids=[*code["full_chat_ids"], *filled],
                    qr_code=link or code["qr_code"],
                    rotations=join_codes.c.rotations + 1, updated_at=now))
                audit.record(conn, actor=actor.label, action="join_code.rotate",
                             object_type="join_code", object_id=code["id"],
                             detail={"filled": filled, "added": added, "attached": attached})
        done.append(rotation)
    return done


def _open_refill(conn: Connection, code_id: int) -> bool:
    for payload in conn.execute(select(staff_tasks.c.payload).where(
            staff_tasks.c.kind == REFILL_TASK, staff_tasks.c.status == tasks.OPEN)).scalars():
        if dict(payload or {}).get("join_code_id") == code_id:
            return True
    return False


def do_add_spares(uow: UnitOfWork, *, actor: Actor, code_id: int,
                  chats: Sequence[str | int]) -> dict[str, Any]:
    actor.require(Permission.OPERATE)
    with uow.write() as conn:
        code = _join_code(conn, code_id)
        ids = [_group(conn, code["platform"], c)["external_id"] for c in chats]
        known = {*code["chat_ids"], *code["spare_chat_ids"], *code["full_chat_ids"]}
        fresh = [c for c in ids if c not in known]
        conn.execute(update(join_codes).where(join_codes.c.id == code_id).values(
            spare_chat_ids=[*code["spare_chat_ids"], *fresh], updated_at=utcnow()))
        audit.record(conn, actor=actor.label, action="join_code.spares",
                     object_type="join_code", object_id=code_id, detail={"added": fresh})
        return _join_code(conn, code_id)


def do_delete_join_code(uow: UnitOfWork, *, actor: Actor,
                        adapters: Mapping[str, PlatformAdapter], code_id: int) -> None:
    actor.require(Permission.OPERATE)
    with uow.read() as conn:
        code = _join_code(conn, code_id)
    adapter = adapters.get(code["platform"])
    if code["config_id"]:  # a creation that stopped before the platform answered has none
        if adapter is None:
            raise Conflict("no adapter for platform {platform!r}", platform=code["platform"])
        adapter.delete_join_code(code["account"], code["config_id"])
    with uow.write() as conn:
        conn.execute(update(join_codes).where(join_codes.c.id == code_id)
                     .values(state=DELETED, updated_at=utcnow()))
        audit.record(conn, actor=actor.label, action="join_code.delete",
                     object_type="join_code", object_id=code_id,
                     detail={"channel": code["channel"]})
