"""People's roles in a group (F7): owner, presenter, expert/KOL, atmosphere (托儿), advisor —
as the team assigns them, the one writer of ``group_roles``. Whoever holds a role counts as
the team's own (``members.staff_among`` and the rule context read them): moderation leaves
them be and lurker removal never touches them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select

from qunyun.adapters.storage.sql import insert_ignore
from qunyun.adapters.storage.tables import group_roles, members, memberships
from qunyun.domain.groups import GroupRole
from qunyun.domain.staff import Permission
from qunyun.i18n import Terms
from qunyun.services import audit
from qunyun.services.errors import InvalidInput, NotFound
from qunyun.services.groups import access_group_by_id
from qunyun.services.members import shown_name
from qunyun.services.users import Actor


def _role(role: str) -> str:
    if role not in {r.value for r in GroupRole}:
        raise InvalidInput("role: one of {choices}", choices=Terms(
            "grole", (r.value for r in GroupRole)))
    return role


def list_roles(conn: Connection, *, actor: Actor, group_id: int) -> list[dict[str, Any]]:
    """Who does what in the group, by role then member number; whether each is still in it."""
    access_group_by_id(conn, actor=actor, group_id=group_id)
    order = {r.value: i for i, r in enumerate(GroupRole)}
    here = (select(memberships.c.member_id).where(memberships.c.group_id == group_id,
                                                   memberships.c.left_at.is_(None)))
    rows = [{"member_id": int(r.member_id), "number": int(r.number),
             "name": shown_name(r.display_name, r.number), "role": r.role,
             "assigned_by": r.assigned_by, "created_at": r.created_at}
            for r in conn.execute(
                select(group_roles.c.member_id, group_roles.c.role, group_roles.c.assigned_by,
                       group_roles.c.created_at, members.c.number, members.c.display_name)
                .join(members, members.c.id == group_roles.c.member_id)
                .where(group_roles.c.group_id == group_id))]
    present = set(conn.execute(here.where(memberships.c.member_id.in_(
        [r["member_id"] for r in rows] or [-1]))).scalars())
    for r in rows:
        r["in_group"] = r["member_id"] in present
    return sorted(rows, key=lambda r: (order[r["role"]], r["number"]))


def do_set_role(conn: Connection, *, actor: Actor, group_id: int, member_id: int, role: str,
                remove: bool = False, now: datetime) -> list[dict[str, Any]]:
    """Give a member a role in the group (again: no change), or take it away."""
    actor.require(Permission.OPERATE)
    access_group_by_id(conn, actor=actor, group_id=group_id, write=True)
    _role(role)
    if conn.execute(select(members.c.id).where(members.c.id == member_id)).first() is None:
        raise NotFound("member {member_id} not found", member_id=member_id)
    if remove:
        changed = conn.execute(delete(group_roles).where(
            group_roles.c.group_id == group_id, group_roles.c.member_id == member_id,
            group_roles.c.role == role)).rowcount > 0
    else:
        changed = insert_ignore(conn, group_roles, {
            "group_id": group_id, "member_id": member_id, "role": role,
            "assigned_by": actor.label, "created_at": now},
            ["group_id", "member_id", "role"]) is not None
    if changed:
        audit.record(conn, actor=actor.label,
                     action="group.role_removed" if remove else "group.role_added",
                     object_type="group", object_id=group_id,
                     detail={"member": member_id, "role": role})
    return list_roles(conn, actor=actor, group_id=group_id)


def holders(conn: Connection, group_id: int) -> frozenset[int]:
    """The members holding any role in the group (the rule context reads them as staff)."""
    return frozenset(int(m) for m in conn.execute(
        select(group_roles.c.member_id).where(group_roles.c.group_id == group_id)).scalars())
