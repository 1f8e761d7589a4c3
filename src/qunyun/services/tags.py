"""Tags (F2): manual tags in tag groups, and rule tags declared as segment expressions.

A rule tag is kept equal to its expression: ingest re-checks the members an event touched
(incremental), and ``do_recompute_rule_tags`` re-checks everyone (full). Every add and
removal is written to ``tag_events`` with who or which rule did it and why. A platform's
own tags (WeCom's corp tags) are mirrored here too (``mirror_platform_tag``), so the tags
have one writer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from qunyun.adapters.storage.sql import insert_ignore
from qunyun.adapters.storage.tables import member_tags, members, platform_tags, tag_events, tags
from qunyun.clock import Clock, utcnow
from qunyun.domain.segments import Node, describe
from qunyun.domain.staff import Permission
from qunyun.services import audit
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.segments import member_ids, members_matching_each, parse
from qunyun.services.users import Actor

KINDS = ("manual", "rule")


def _split(ref: str) -> tuple[str, str]:
    """``"意向/高"`` → (group "意向", name "高"); a plain name has no group."""
    group, _, name = ref.strip().rpartition("/")
    return group.strip(), name.strip()


def _check(name: str, group: str) -> None:
    if not name or len(name) > 64 or len(group) > 64:
        raise InvalidInput("tag: name 1–64 characters, group up to 64")


def find_tag(conn: Connection, ref: str | int) -> dict[str, Any] | None:
    """A tag by id, ``group/name`` or a name that is unique across groups."""
    if isinstance(ref, int) or str(ref).isdigit():
        row = conn.execute(select(tags).where(tags.c.id == int(ref))).mappings().first()
        return dict(row) if row else None
    group, name = _split(str(ref))
    stmt = select(tags).where(tags.c.name == name)
    if group:
        stmt = stmt.where(tags.c.tag_group == group)
    rows = conn.execute(stmt).mappings().all()
    if len(rows) > 1:
        raise InvalidInput("tag {ref!r} exists in several groups: write group/name", ref=ref)
    return dict(rows[0]) if rows else None


def _tag(conn: Connection, ref: str | int) -> dict[str, Any]:
    tag = find_tag(conn, ref)
    if tag is None:
        raise NotFound("tag {ref!r} not found", ref=ref)
    return tag


def do_create_tag(conn: Connection, *, actor: Actor, name: str, group: str = "",
                  color: str = "", kind: str = "manual", rule: str = "",
                  description: str = "", clock: Clock | None = None) -> int:
    """Create a tag; a rule tag is applied to everyone it matches at once."""
    actor.require(Permission.OPERATE)
    name, group = name.strip(), group.strip()
    _check(name, group)
    if kind not in KINDS:
        raise InvalidInput("kind: manual or rule")
    if kind == "rule":
        rule = describe(parse(rule))
    elif rule:
        raise InvalidInput("rule: only rule tags have a rule")
    tag_id = _insert(conn, actor, name=name, group=group, color=color, kind=kind, rule=rule,
                     description=description)
    if tag_id is None:
        raise Conflict("tag {tag} exists", tag=f"{group}/{name}" if group else name)
    if kind == "rule":
        assert clock is not None, "rule tags are applied at once: pass the team clock"
        _recompute(conn, _tag(conn, tag_id), clock)
    return tag_id


def _insert(conn: Connection, actor: Actor, *, name: str, group: str, color: str = "",
            kind: str = "manual", rule: str = "", description: str = "") -> int | None:
    """The new tag's id (audited), or None when the name is taken in the group — also by a
    transaction making the same tag at this moment (insert-ignore waits for it)."""
    made = insert_ignore(conn, tags, {"name": name, "tag_group": group, "color": color[:16],
                                      "kind": kind, "rule": rule, "description": description,
                                      "created_at": utcnow()}, ["name", "tag_group"])
    if made is not None:
        audit.record(conn, actor=actor.label, action="tag.create", object_type="tag",
                     object_id=made, detail={"name": name, "group": group, "kind": kind,
                                             "rule": rule})
    return int(made) if made is not None else None


def do_update_tag(conn: Connection, *, actor: Actor, tag_id: int, name: str | None = None,
                  group: str | None = None, color: str | None = None,
                  rule: str | None = None, description: str | None = None,
                  clock: Clock | None = None) -> None:
    actor.require(Permission.OPERATE)
    before = _tag(conn, tag_id)
    values: dict[str, Any] = {}
    if name is not None or group is not None:
        values["name"] = (name if name is not None else before["name"]).strip()
        values["tag_group"] = (group if group is not None else before["tag_group"]).strip()
        _check(values["name"], values["tag_group"])
        clash = conn.execute(select(tags.c.id).where(
            tags.c.name == values["name"], tags.c.tag_group == values["tag_group"],
            tags.c.id != tag_id)).first()
        if clash:
            raise Conflict("another tag has that group and name")
    if color is not None:
        values["color"] = color[:16]
    if description is not None:
        values["description"] = description
    if rule is not None:
        if before["kind"] != "rule":
            raise InvalidInput("rule: only rule tags have a rule")
        values["rule"] = describe(parse(rule))
    if not values:
        return
    conn.execute(update(tags).where(tags.c.id == tag_id).values(**values))
    audit.record(conn, actor=actor.label, action="tag.update", object_type="tag",
                 object_id=tag_id, detail={"before": {k: before[k] for k in values},
                                           "after": values})
    if "rule" in values:
        assert clock is not None, "rule tags are applied at once: pass the team clock"
        _recompute(conn, _tag(conn, tag_id), clock)


def list_tags(conn: Connection, *, actor: Actor) -> list[dict[str, Any]]:
    """Every tag with how many (unmerged) members carry it."""
    actor.require(Permission.VIEW)
    counts = (select(member_tags.c.tag_id, func.count().label("members"))
              .join(members, members.c.id == member_tags.c.member_id)
              .where(members.c.merged_into_id.is_(None))
              .group_by(member_tags.c.tag_id).subquery())
    stmt = (select(tags, func.coalesce(counts.c.members, 0).label("members"))
            .outerjoin(counts, counts.c.tag_id == tags.c.id))
    return sorted((dict(r) for r in conn.execute(stmt).mappings()),
                  key=lambda t: (t["tag_group"], t["name"]))


def member_tag_list(conn: Connection, member_id: int) -> list[dict[str, Any]]:
    stmt = (select(tags.c.id, tags.c.name, tags.c.tag_group, tags.c.color, tags.c.kind,
                   member_tags.c.added_at, member_tags.c.added_by, member_tags.c.source,
                   member_tags.c.reason)
            .join(member_tags, member_tags.c.tag_id == tags.c.id)
            .where(member_tags.c.member_id == member_id))
    # sorted here: SQLite and PostgreSQL collate Chinese differently
    return sorted((dict(r) for r in conn.execute(stmt).mappings()),
                  key=lambda t: (t["tag_group"], t["name"]))


def _add(conn: Connection, *, member_id: int, tag_id: int, by: str, source: str, reason: str,
         at: datetime) -> bool:
    added = insert_ignore(conn, member_tags, {
        "member_id": member_id, "tag_id": tag_id, "added_at": at, "added_by": by,
        "source": source, "reason": reason}, ["member_id", "tag_id"])
    if added:
        conn.execute(tag_events.insert().values(member_id=member_id, tag_id=tag_id,
                                                action="add", at=at, by=by, source=source,
                                                reason=reason))
    return bool(added)


def _remove(conn: Connection, *, member_id: int, tag_id: int, by: str, source: str,
            reason: str, at: datetime) -> bool:
    gone = conn.execute(delete(member_tags).where(member_tags.c.member_id == member_id,
                                                  member_tags.c.tag_id == tag_id)).rowcount
    if gone:
        conn.execute(tag_events.insert().values(member_id=member_id, tag_id=tag_id,
                                                action="remove", at=at, by=by, source=source,
                                                reason=reason))
    return bool(gone)


def do_tag_member(conn: Connection, *, actor: Actor, member_id: int, tag: str | int,
                  reason: str = "", create: bool = True) -> bool:
    """Put a manual tag on a member (creating ``group/name`` when it does not exist yet);
    False when they already had it."""
    actor.require(Permission.OPERATE)
    _live_member(conn, member_id)
    found = find_tag(conn, tag)
    if found is None:
        if not create or isinstance(tag, int):
            raise NotFound("tag {tag!r} not found", tag=tag)
        found = _tag(conn, _ensure_manual(conn, actor, str(tag)))
    return _manual(conn, actor, member_id, found, reason, add=True)


def _ensure_manual(conn: Connection, actor: Actor, ref: str) -> int:
    """The manual tag ``group/name``, made if missing — by one of two transactions making it
    at once (workers tagging completers together): the other waits, then reads it."""
    group, name = _split(ref)
    _check(name, group)
    made = _insert(conn, actor, name=name, group=group)
    if made is not None:
        return made
    return int(conn.execute(select(tags.c.id).where(tags.c.name == name,
                                                    tags.c.tag_group == group)).scalar_one())


def do_untag_member(conn: Connection, *, actor: Actor, member_id: int, tag: str | int,
                    reason: str = "") -> bool:
    actor.require(Permission.OPERATE)
    return _manual(conn, actor, member_id, _tag(conn, tag), reason, add=False)


def _manual(conn: Connection, actor: Actor, member_id: int, tag: dict[str, Any], reason: str,
            *, add: bool) -> bool:
    """A person adds or removes a manual tag: history row, and an audit row when it changed."""
    if tag["kind"] == "rule":
        raise InvalidInput("tag {name!r} is a rule tag: it follows its rule", name=tag['name'])
    change = _add if add else _remove
    changed = change(conn, member_id=member_id, tag_id=tag["id"], by=actor.label,
                     source="manual", reason=reason, at=utcnow())
    if changed:
        audit.record(conn, actor=actor.label, action="member.tag" if add else "member.untag",
                     object_type="member", object_id=member_id,
                     detail={"tag": tag["name"], "reason": reason})
    return changed


def tag_history(conn: Connection, member_id: int, limit: int = 200) -> list[dict[str, Any]]:
    stmt = (select(tag_events, tags.c.name.label("tag_name"), tags.c.tag_group)
            .join(tags, tags.c.id == tag_events.c.tag_id)
            .where(tag_events.c.member_id == member_id)
            .order_by(tag_events.c.at.desc(), tag_events.c.id.desc()).limit(limit))
    return [dict(r) for r in conn.execute(stmt).mappings()]


# ---- rule tags --------------------------------------------------------------------------

_RULE_TAGS = select(tags).where(tags.c.kind == "rule")  # built once: read for every event


def load_rule_tags(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(_RULE_TAGS).mappings()]


def apply_rule_tags(conn: Connection, member_ids_: Iterable[int], clock: Clock, *,
                    rule_tags: list[dict[str, Any]] | None = None) -> int:
    """Re-check the rule tags of these members (ingest calls this per event, with the rule
    tags its batch read once); returns how many tags were added or removed."""
    candidates = sorted(set(member_ids_))
    chosen = rule_tags if rule_tags is not None else load_rule_tags(conn)
    if not candidates or not chosen:
        return 0
    # every rule in one query, and the members' current rule tags in another
    matches = members_matching_each(conn, [_rule(t["rule"]) for t in chosen], clock,
                                    candidates)
    held: dict[int, set[int]] = {}
    for tag_id, member_id in conn.execute(select(member_tags.c.tag_id, member_tags.c.member_id)
                                          .where(member_tags.c.tag_id.in_(
                                              [t["id"] for t in chosen]),
                                              member_tags.c.member_id.in_(candidates))):
        held.setdefault(int(tag_id), set()).add(int(member_id))
    changed = 0
    for tag, matched in zip(chosen, matches, strict=True):
        having = held.get(int(tag["id"]), set())
        changed += _sync(conn, tag, add=matched - having, remove=having - matched, clock=clock)
    return changed


@lru_cache(maxsize=256)
def _rule(expression: str) -> Node:
    """A rule tag's parsed rule (parsed once per process, not once per event)."""
    return parse(expression)


def _sync(conn: Connection, tag: dict[str, Any], *, add: Iterable[int],
          remove: Iterable[int], clock: Clock) -> int:
    by, reason = f"rule:{tag['name']}", tag["rule"]
    n = 0
    for member_id in sorted(add):
        n += _add(conn, member_id=member_id, tag_id=tag["id"], by=by, source="rule",
                  reason=reason, at=clock.now)
    for member_id in sorted(remove):
        n += _remove(conn, member_id=member_id, tag_id=tag["id"], by=by, source="rule",
                     reason=f"no longer: {reason}", at=clock.now)
    return n


def _recompute(conn: Connection, tag: dict[str, Any], clock: Clock) -> tuple[int, int]:
    matched = set(conn.execute(member_ids(parse(tag["rule"]), clock)).scalars())
    having = set(conn.execute(select(member_tags.c.member_id).where(
        member_tags.c.tag_id == tag["id"])).scalars())
    add, remove = matched - having, having - matched
    _sync(conn, tag, add=add, remove=remove, clock=clock)
    return len(add), len(remove)


def refresh_rule_tags(conn: Connection, clock: Clock) -> int:
    """Full recompute of every rule tag without an actor (bulk imports call this in their own
    audited transaction); returns how many tags were added or removed."""
    return sum(sum(_recompute(conn, tag, clock)) for tag in load_rule_tags(conn))


def do_recompute_rule_tags(conn: Connection, *, actor: Actor, clock: Clock,
                           tag: str | int | None = None) -> dict[str, dict[str, int]]:
    """Full recompute of one rule tag or all; returns {tag: {added, removed}}."""
    actor.require(Permission.OPERATE)
    chosen = [_tag(conn, tag)] if tag is not None else load_rule_tags(conn)
    result: dict[str, dict[str, int]] = {}
    for row in chosen:
        if row["kind"] != "rule":
            raise InvalidInput("tag {name!r} is not a rule tag", name=row['name'])
        added, removed = _recompute(conn, row, clock)
        result[row["name"]] = {"added": added, "removed": removed}
    audit.record(conn, actor=actor.label, action="tag.recompute", object_type="tag",
                 object_id=str(tag or "all"), detail=result)
    return result


def _live_member(conn: Connection, member_id: int) -> None:
    row = conn.execute(select(members.c.merged_into_id).where(members.c.id == member_id)).first()
    if row is None:
        raise NotFound("member {member_id} not found", member_id=member_id)
    if row.merged_into_id is not None:
        raise InvalidInput("member {member_id} was merged into member {merged_into_id}",
                           member_id=member_id, merged_into_id=row.merged_into_id)


# --- a platform's own tags, mirrored --------------------------------------------------------

def mirror_platform_tag(conn: Connection, *, platform: str, account: str, external_id: str,
                        name: str, group: str, deleted: bool, description: str,
                        now: datetime) -> int:
    """One of a platform's tags as a qunyun tag (tag group → tag group, tag → tag): found by
    name, renamed when the platform renamed the one it maps to, created when new. A tag
    deleted on the platform is marked so in the mirror; qunyun keeps the tag and its
    history. Returns the qunyun tag's id."""
    name, group = name[:64], group[:64]
    mapped = conn.execute(select(platform_tags.c.id, platform_tags.c.tag_id).where(
        platform_tags.c.platform == platform, platform_tags.c.account == account,
        platform_tags.c.external_id == external_id)).first()
    tag_id = conn.execute(select(tags.c.id).where(
        tags.c.tag_group == group, tags.c.name == name)).scalar()
    if tag_id is None and mapped is not None:
        tag_id = mapped.tag_id  # renamed on the platform: rename here
        conn.execute(update(tags).where(tags.c.id == tag_id).values(name=name, tag_group=group))
    if tag_id is None:
        tag_id = conn.execute(tags.insert().values(
            name=name, tag_group=group, color="", kind="manual", rule="",
            description=description, created_at=now).returning(tags.c.id)).scalar_one()
    if mapped is None:
        conn.execute(platform_tags.insert().values(
            platform=platform, account=account, external_id=external_id, tag_id=tag_id,
            deleted=deleted))
    else:
        conn.execute(update(platform_tags).where(platform_tags.c.id == mapped.id)
                     .values(tag_id=tag_id, deleted=deleted))
    return int(tag_id)


def mirror_gone(conn: Connection, *, platform: str, account: str, seen: set[str]) -> None:
    """The platform's tags not in ``seen`` (its latest list) are marked deleted."""
    conn.execute(update(platform_tags).where(
        platform_tags.c.platform == platform, platform_tags.c.account == account,
        platform_tags.c.external_id.not_in(seen) if seen else platform_tags.c.id.isnot(None))
        .values(deleted=True))
