"""WeCom group sync: a chat read back with ``groupchat/get`` and applied as a roster, a
corp's groups listed and reconciled, and the corp-tag mirror."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import update

from qunyun.adapters.platforms.wecom.adapter import WecomAdapter
from qunyun.adapters.platforms.wecom.client import WecomApiError
from qunyun.adapters.storage.sql import insert_ignore
from qunyun.adapters.storage.tables import (
    wecom_chats,
)
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.clock import utcnow
from qunyun.domain.events import ChatRef, GroupUpdated
from qunyun.domain.staff import Permission
from qunyun.services import audit
from qunyun.services import tags as tags_service
from qunyun.services.errors import NotFound
from qunyun.services.ingest import NO_RULES, do_ingest_event
from qunyun.services.rosters import RosterChanges, apply_roster
from qunyun.services.users import SYSTEM, Actor
from qunyun.services.wecom import GONE, PLATFORM, corp_secrets_exist, set_status

log = logging.getLogger(__name__)


# --- sync -------------------------------------------------------------------------------------


def reconcile_chat(uow: UnitOfWork, *, adapter: WecomAdapter, corp_id: str,
                   chat_id: str) -> RosterChanges:
    """Read one group from WeCom and bring qunyun in line with it."""
    try:
        roster = adapter.roster_of(corp_id, chat_id)
    except WecomApiError as exc:
        if exc.code not in GONE:
            raise
        now = utcnow()
        with uow.write() as conn:
            do_ingest_event(conn, GroupUpdated(
                platform=PLATFORM, external_event_id=f"gone:{chat_id}", occurred_at=now,
                chat=ChatRef(external_id=chat_id), dismissed=True), config=NO_RULES)
            conn.execute(update(wecom_chats).where(wecom_chats.c.chat_id == chat_id)
                         .values(status=-1, synced_at=now))
        return RosterChanges()
    with uow.write() as conn:
        changes = apply_roster(conn, platform=PLATFORM, roster=roster)
        values = {"corp_id": corp_id, "owner": roster.owner.external_id if roster.owner else "",
                  "member_version": roster.version, "synced_at": roster.taken_at}
        if insert_ignore(conn, wecom_chats, {"chat_id": chat_id, "status": 0, **values},
                         ["chat_id"]) is None:
            conn.execute(update(wecom_chats).where(wecom_chats.c.chat_id == chat_id)
                         .values(**values))
    return changes


@dataclass
class SyncReport:
    corp_id: str
    groups: int = 0
    members: int = 0
    changes: RosterChanges = field(default_factory=RosterChanges)
    tags: int = 0
    errors: list[str] = field(default_factory=list)


def sync_corp(uow: UnitOfWork, *, adapter: WecomAdapter, corp_id: str,
              actor: Actor = SYSTEM) -> SyncReport:
    """List every customer group of the corp, reconcile each, mirror corp tags."""
    actor.require(Permission.OPERATE)
    with uow.read() as conn:
        if not corp_secrets_exist(conn, corp_id):
            raise NotFound("WeCom corp {corp_id!r} is not connected", corp_id=corp_id)
    report = SyncReport(corp_id)
    try:
        chat_ids = adapter.client(corp_id).group_chat_ids()
    except WecomApiError as exc:
        with uow.write() as conn:
            set_status(conn, corp_id, last_error=str(exc), last_error_at=utcnow())
        raise
    for chat_id in chat_ids:
        try:
            changes = reconcile_chat(uow, adapter=adapter, corp_id=corp_id, chat_id=chat_id)
        except WecomApiError as exc:
            report.errors.append(f"{chat_id}: {exc}")
            continue
        report.groups += 1
        report.members += changes.listed
        report.changes.add(changes)
    try:
        report.tags = sync_tags(uow, adapter=adapter, corp_id=corp_id)
    except WecomApiError as exc:
        report.errors.append(f"tags: {exc}")
    with uow.write() as conn:
        set_status(conn, corp_id, last_sync_at=utcnow(), groups=report.groups,
                    members=report.members, tags=report.tags,
                    last_error=report.errors[0] if report.errors else "")
        audit.record(conn, actor=actor.label, action="wecom.sync", object_type="wecom_corp",
                     object_id=corp_id, detail={"groups": report.groups,
                                                "members": report.members,
                                                "joined": report.changes.joined,
                                                "left": report.changes.left,
                                                "errors": len(report.errors)})
    return report



def sync_tags(uow: UnitOfWork, *, adapter: WecomAdapter, corp_id: str) -> int:
    """Mirror corp tags (customer tags) onto qunyun tags: tag group → tag group, tag → tag.
    Tags deleted in WeCom are marked deleted in the mirror; qunyun keeps the tag and its
    history. Returns how many live tags are mirrored."""
    tag_groups = adapter.client(corp_id).corp_tags()
    live = 0
    now = utcnow()
    with uow.write() as conn:
        seen: set[str] = set()
        for group in tag_groups:
            for tag in group.get("tag", []):
                ext = str(tag["id"])
                seen.add(ext)
                deleted = bool(tag.get("deleted")) or bool(group.get("deleted"))
                tags_service.mirror_platform_tag(
                    conn, platform=PLATFORM, account=corp_id, external_id=ext,
                    name=str(tag.get("name", "")), group=str(group.get("group_name", "")),
                    deleted=deleted, description="企业微信企业标签 (WeCom corp tag)", now=now)
                live += 0 if deleted else 1
        tags_service.mirror_gone(conn, platform=PLATFORM, account=corp_id, seen=seen)
        set_status(conn, corp_id, tags=live, tags_synced_at=now)
    return live
