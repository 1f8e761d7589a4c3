"""A member's profile: identities, groups, tags, attributes, records, blacklist standing and
one timeline that puts group events, messages, tags and staff records side by side."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import groups, member_events, messages
from qunyun.domain.staff import Permission
from qunyun.services import attributes, blacklist, merges, records, tags
from qunyun.services.leads import mask_address, mask_phone
from qunyun.services.members import access_member_by_id
from qunyun.services.users import Actor

TIMELINE_MESSAGES = 30


def get_member_profile(conn: Connection, *, actor: Actor, member_id: int,
                       now: datetime) -> dict[str, Any]:
    profile = access_member_by_id(conn, actor=actor, member_id=member_id)
    if not actor.can(Permission.MEMBER_PII):
        profile["phone"] = mask_phone(profile["phone"])
        profile["address"] = mask_address(profile["address"])
    names = dict(conn.execute(select(groups.c.id, groups.c.name)).all())
    for m in profile["memberships"]:
        m["group_name"] = names.get(m["group_id"], "")
    profile["tags"] = tags.member_tag_list(conn, member_id)
    profile["attributes"] = attributes.member_attribute_list(conn, member_id, actor=actor)
    profile["records"] = records.member_records(conn, member_id)
    profile["blacklist"] = blacklist.active_entry(conn, member_id, now)
    profile["merges"] = merges.list_merges(conn, actor=actor, member_id=member_id)
    profile["timeline"] = member_timeline(conn, member_id, names)
    return profile


def member_timeline(conn: Connection, member_id: int, group_names: dict[int, str],
                    limit: int = 200) -> list[dict[str, Any]]:
    """Newest first; each item has ``at``, ``kind``, ``text`` and where it came from."""
    items: list[dict[str, Any]] = []
    # the blacklist's own history (below) says who barred them and why
    for r in conn.execute(select(member_events).where(
            member_events.c.member_id == member_id,
            member_events.c.kind.not_in((blacklist.BLACKLISTED, blacklist.UNBLACKLISTED)))
            .order_by(member_events.c.occurred_at.desc()).limit(limit)):
        data = dict(r.data or {})
        # ``data`` for the page to put in words (a join's scene, the channel); ``text`` keeps
        # the pairs for the API
        item = {"at": r.occurred_at, "kind": f"event.{r.kind}", "source": "group",
                "group": group_names.get(r.group_id, ""), "data": data,
                "text": ", ".join(f"{k}={v}" for k, v in data.items() if v)}
        if "decision" in data:  # a moderation decision: the step it took, in words
            item.update(text="", data={}, step=data.get("action", ""))
        items.append(item)
    for r in conn.execute(select(messages.c.sent_at, messages.c.text, messages.c.group_id,
                                 messages.c.recalled)
                          .where(messages.c.member_id == member_id)
                          .order_by(messages.c.sent_at.desc()).limit(TIMELINE_MESSAGES)):
        items.append({"at": r.sent_at, "kind": "message", "source": "group",
                      "group": group_names.get(r.group_id, ""), "text": r.text[:200]})
    for h in tags.tag_history(conn, member_id, limit):
        label = f"{h['tag_group']}/{h['tag_name']}" if h["tag_group"] else h["tag_name"]
        items.append({"at": h["at"], "kind": f"tag.{h['action']}", "source": h["by"],
                      "group": "", "text": label + (f" — {h['reason']}" if h["reason"] else "")})
    for h in records.member_records(conn, member_id, limit):
        items.append({"at": h["created_at"], "kind": f"record.{h['kind']}",
                      "source": h["author"], "group": "", "text": h["body"],
                      "due_at": h["due_at"]})
    for h in blacklist.member_blacklist_history(conn, member_id):
        items.append({"at": h["added_at"], "kind": "blacklist.add", "source": h["added_by"],
                      "group": "", "text": h["reason"]})
        if h["lifted_at"]:
            items.append({"at": h["lifted_at"], "kind": "blacklist.lift",
                          "source": h["lifted_by"] or "", "group": "", "text": ""})
    items.sort(key=lambda i: i["at"], reverse=True)
    return items[:limit]

