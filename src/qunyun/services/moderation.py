"""Moderation (F13): word lists, the decision log and the review queue.

A borderline message waits in the review queue; a person confirms (the escalation step is
then carried out through the outbox, as if the rule had decided) or overturns it. Any
decision can be overturned later, also one the rule took by itself: it then stops counting
toward removal, lifts the blacklist it caused and cancels or undoes its removals. Both
answers become labels the learned score trains on at the next snapshot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Select, delete, func, or_, select, update

from qunyun.adapters.storage.tables import blacklist as blacklist_table
from qunyun.adapters.storage.tables import (
    groups,
    members,
    moderation_decisions,
    word_lists,
)
from qunyun.adapters.storage.tables import outbox as outbox_table
from qunyun.clock import utcnow
from qunyun.domain.actions import (
    CapabilityLookup,
    MuteMember,
    RemoveMember,
    RestoreMember,
    UnmuteMember,
)
from qunyun.domain.staff import Permission
from qunyun.engine.freshness import is_stale
from qunyun.engine.moderation import SEVERITIES, Classifier, WordList
from qunyun.engine.rules.moderation import escalation, step_for
from qunyun.i18n import Term, fill, translate
from qunyun.services import audit, blacklist, outbox, tasks
from qunyun.services.attributes import decode_text
from qunyun.services.automation import (
    CONFIRMED,
    OVERTURNED,
    PENDING,
    apply_effects,
    bump_version,
    effective_settings,
    note_decision,
    prior_violations,
    retract_decision,
)
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.listing import Columns, Listing, Page, fetch
from qunyun.services.users import Actor

MAX_WORDS = 200_000
MAX_LIST_BYTES = 20 * 1024 * 1024


def parse_words(text: str) -> list[str]:
    """One term per line; blank lines and ``#`` comments skipped; duplicates dropped."""
    seen: dict[str, None] = {}
    for line in text.splitlines():
        word = line.strip()
        if word and not word.startswith("#"):
            seen.setdefault(word, None)
    return list(seen)


def do_save_word_list(conn: Connection, *, actor: Actor, name: str, severity: str,
                      words: list[str], source: str = "") -> dict[str, Any]:
    """Create a list or replace its words (by name)."""
    actor.require(Permission.OPERATE)
    name = name.strip()
    if not name or len(name) > 128:
        raise InvalidInput("name: 1 to 128 characters")
    if severity not in SEVERITIES:
        raise InvalidInput("severity: one of {severities}", severities=', '.join(SEVERITIES))
    if not words:
        raise InvalidInput("words: the list is empty")
    if len(words) > MAX_WORDS:
        raise InvalidInput("words: at most {limit}", limit=MAX_WORDS)
    now = utcnow()
    existing = conn.execute(select(word_lists.c.id).where(word_lists.c.name == name)).scalar()
    values = {"severity": severity, "words": "\n".join(words), "source": source[:500],
              "updated_at": now}
    if existing is None:
        list_id = int(conn.execute(word_lists.insert().values(
            name=name, enabled=True, created_by=actor.label, created_at=now, **values)
            .returning(word_lists.c.id)).scalar_one())
    else:
        list_id = int(existing)
        conn.execute(update(word_lists).where(word_lists.c.id == list_id).values(**values))
    bump_version(conn)
    audit.record(conn, actor=actor.label, action="words.save", object_type="word_list",
                 object_id=list_id, detail={"name": name, "severity": severity,
                                            "words": len(words), "source": source[:200]})
    return {"id": list_id, "name": name, "severity": severity, "words": len(words),
            "created": existing is None}


def do_load_word_file(conn: Connection, *, actor: Actor, path: Path, severity: str,
                      name: str = "") -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput("{path}: {strerror}", path=path, strerror=exc.strerror) from None
    if len(data) > MAX_LIST_BYTES:
        raise InvalidInput("{path}: larger than {mb} MB",
                           path=path, mb=MAX_LIST_BYTES // (1024 * 1024))
    text, _enc = decode_text(data, str(path))
    return do_save_word_list(conn, actor=actor, name=name or path.stem, severity=severity,
                             words=parse_words(text), source=str(path.name))


def do_set_word_list_enabled(conn: Connection, *, actor: Actor, list_id: int,
                             enabled: bool) -> None:
    actor.require(Permission.OPERATE)
    if not conn.execute(update(word_lists).where(word_lists.c.id == list_id)
                        .values(enabled=enabled, updated_at=utcnow())).rowcount:
        raise NotFound("word list {list_id} not found", list_id=list_id)
    bump_version(conn)
    audit.record(conn, actor=actor.label, action="words.enable" if enabled else
                 "words.disable", object_type="word_list", object_id=list_id)


def do_delete_word_list(conn: Connection, *, actor: Actor, list_id: int) -> None:
    actor.require(Permission.OPERATE)
    if not conn.execute(delete(word_lists).where(word_lists.c.id == list_id)).rowcount:
        raise NotFound("word list {list_id} not found", list_id=list_id)
    bump_version(conn)
    audit.record(conn, actor=actor.label, action="words.delete", object_type="word_list",
                 object_id=list_id)


def list_word_lists(conn: Connection, *, actor: Actor) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    out = []
    for row in conn.execute(select(word_lists).order_by(word_lists.c.name)).mappings():
        data = {k: v for k, v in row.items() if k != "words"}
        words = row["words"].splitlines()
        data["count"] = len(words)
        data["sample"] = words[:8]
        out.append(data)
    return out


def file_classifier(paths: list[Path], severity: str = "weak") -> Classifier:
    """A classifier with word lists read from files (for ``qunyun moderate classify``)."""
    lists = []
    for path in paths:
        try:
            text, _enc = decode_text(path.read_bytes(), str(path))
        except OSError as exc:
            raise InvalidInput("{path}: {strerror}", path=path, strerror=exc.strerror) from None
        lists.append(WordList(path.stem, severity, tuple(parse_words(text))))  # type: ignore[arg-type]
    return Classifier(lists)


# --- decisions and the review queue ------------------------------------------------------


DECISION_COLUMNS = Columns(
    sortable={"id": (moderation_decisions.c.id, "desc"),
              "score": (moderation_decisions.c.score, "desc"),
              "group": (groups.c.name, "asc"), "action": (moderation_decisions.c.action, "asc")},
    searched=(moderation_decisions.c.text, groups.c.name, members.c.display_name),
    number=members.c.number, tiebreak=moderation_decisions.c.id.desc())


def page_decisions(conn: Connection, *, actor: Actor, status: str | None = None,
                   group_id: int | None = None, listing: Listing = Listing()) -> Page:
    """The moderation log, searched by the message's words, group or member."""
    actor.require(Permission.VIEW)
    return fetch(conn, _decisions(status, group_id), listing, DECISION_COLUMNS)


def list_decisions(conn: Connection, *, actor: Actor, status: str | None = None,
                   group_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    return page_decisions(conn, actor=actor, status=status, group_id=group_id,
                          listing=Listing(per_page=limit)).rows


def _decisions(status: str | None, group_id: int | None) -> Select[Any]:
    stmt = (select(moderation_decisions, groups.c.name.label("group_name"),
                   members.c.display_name.label("member_name"),
                   members.c.number.label("member_number"))
            .outerjoin(groups, groups.c.id == moderation_decisions.c.group_id)
            .outerjoin(members, members.c.id == moderation_decisions.c.member_id))
    if status:
        stmt = stmt.where(moderation_decisions.c.status == status)
    if group_id is not None:
        stmt = stmt.where(moderation_decisions.c.group_id == group_id)
    return stmt


def get_decision(conn: Connection, *, actor: Actor, decision_id: int) -> dict[str, Any]:
    actor.require(Permission.VIEW)
    row = conn.execute(select(moderation_decisions).where(
        moderation_decisions.c.id == decision_id)).mappings().first()
    if row is None:
        raise NotFound("decision {decision_id} not found", decision_id=decision_id)
    return dict(row)


def count_pending(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(moderation_decisions).where(
        moderation_decisions.c.status == PENDING)).scalar_one())


def do_review(conn: Connection, *, actor: Actor, decision_id: int, confirm: bool,
              capabilities: CapabilityLookup,
              now: datetime | None = None, restore: bool = True) -> dict[str, Any]:
    """Confirm a queued decision (carry out the escalation step, as the rule would have) or
    overturn any decision, queued or already acted on; both become labels for the learned
    score. See :func:`_overturn` for what overturning undoes."""
    actor.require(Permission.OPERATE)
    now = now or utcnow()
    row = get_decision(conn, actor=actor, decision_id=decision_id)
    if row["status"] == OVERTURNED or (confirm and row["status"] != PENDING):
        raise Conflict("decision {decision_id} is already {status}",
                       decision_id=decision_id, status=Term("auto.status", row["status"]))
    step = row["action"]
    undone: dict[str, int] = {}
    if confirm:
        step = _carry_out(conn, actor=actor, row=row, capabilities=capabilities, now=now)
    else:
        undone = _overturn(conn, actor=actor, row=row, capabilities=capabilities, now=now,
                           restore=restore)
        step = "none" if row["status"] == PENDING else step
    status = CONFIRMED if confirm else OVERTURNED
    conn.execute(update(moderation_decisions).where(
        moderation_decisions.c.id == decision_id).values(
        status=status, action=step, reviewed_by=actor.label, reviewed_at=now))
    bump_version(conn)  # the label reaches the learned score
    audit.record(conn, actor=actor.label, action=f"moderation.{status}",
                 object_type="moderation_decision", object_id=decision_id,
                 detail={"step": step, "was": row["status"], **undone})
    return {**get_decision(conn, actor=actor, decision_id=decision_id), "undone": undone}


def _carry_out(conn: Connection, *, actor: Actor, row: dict[str, Any],
               capabilities: CapabilityLookup, now: datetime) -> str:
    """What the rule would have done had it been sure; returns the step."""
    if row["member_id"] is None or row["group_id"] is None:
        return "none"
    cfg = effective_settings(conn, row["group_id"]).moderation
    step = step_for(cfg, prior_violations(conn, member_id=row["member_id"],
                                          group_id=row["group_id"], at=now,
                                          days=cfg.violation_days))
    platform = conn.execute(select(groups.c.platform).where(
        groups.c.id == row["group_id"])).scalar_one()
    name = conn.execute(select(members.c.display_name).where(
        members.c.id == row["member_id"])).scalar() or ""
    actions = [("moderation", a) for a in escalation(
        cfg, step, group_id=row["group_id"], member_id=row["member_id"], name=name,
        reasons=row["reasons"], signals=row["signals"])]
    # a person decided, so a removal happens whenever they do; a warning about a message
    # of days ago would read as nonsense in the group, so that one is only counted
    freshness = effective_settings(conn, None).freshness
    outward = [a for a in actions if not a[1].internal
               and not (a[1].timeliness() == "reply"
                        and is_stale(a[1], now - row["created_at"], freshness))]
    outbox.enqueue(conn, platform=platform, actions=outward,
                   capabilities=capabilities(platform), key_prefix=f"review:{row['id']}",
                   now=now)
    apply_effects(conn, [a for a in actions if a[1].internal], key=f"review:{row['id']}",
                  at=now, actor=actor, capabilities=capabilities, decision_id=row["id"])
    # a person confirmed it: an ad (their label), and a violation when a step was taken
    note_decision(conn, decision_id=row["id"], member_id=row["member_id"],
                  group_id=row["group_id"], verdict="block", signals=row["signals"] or ["ad"],
                  action=step, at=now)
    return step


def _overturn(conn: Connection, *, actor: Actor, row: dict[str, Any],
              capabilities: CapabilityLookup, now: datetime,
              restore: bool) -> dict[str, int]:
    """Undo what a decision did: it stops counting toward the next step (its member events
    become ``…_overturned``), a blacklist it caused is lifted, a removal or mute still
    waiting is cancelled (its staff task dismissed), a removal already done is undone when
    ``restore`` (the platform lets them back in, or a person re-invites them) and a mute
    already done is lifted."""
    out = {"lifted": 0, "cancelled": 0, "restored": 0, "unmuted": 0}
    member_id = row["member_id"]
    if member_id is None or row["status"] == PENDING:
        return out
    retract_decision(conn, decision_id=row["id"], member_id=member_id)
    entries = [dict(e) for e in conn.execute(select(blacklist_table).where(
        blacklist_table.c.decision_id == row["id"])).mappings()]
    for entry in entries:
        if entry["lifted_at"] is None:
            blacklist.lift_entry(conn, actor=actor, entry=entry, reason="判定已撤销", now=now)
            out["lifted"] += 1
    removals = [or_(outbox_table.c.idempotency_key.like(f"review:{row['id']}:%"),
                    *[outbox_table.c.idempotency_key.like(f"blacklist:{e['id']}:%")
                      for e in entries])]
    if row["inbound_event_id"] is not None:
        removals.append(outbox_table.c.inbound_event_id == row["inbound_event_id"])
    restored: set[tuple[str, int]] = set()
    for rid, platform, group_id, status, task_id, kind in conn.execute(
            select(outbox_table.c.id, outbox_table.c.platform, outbox_table.c.group_id,
                   outbox_table.c.status, outbox_table.c.staff_task_id,
                   outbox_table.c.action_type).where(
                outbox_table.c.action_type.in_((RemoveMember.type_name,
                                                MuteMember.type_name)),
                outbox_table.c.member_id == member_id, or_(*removals))):
        mute = kind == MuteMember.type_name
        if status in (outbox.PENDING, outbox.STAFF_TASK):
            why = "判定已撤销，无需禁言" if mute else "判定已撤销，无需移出"
            outbox.do_cancel(conn, outbox_id=rid, reason=why)
            if task_id is not None:
                tasks.dismiss(conn, task_id=task_id, outcome=why, actor=actor.label, now=now)
            out["cancelled"] += 1
        elif mute and status in (outbox.DELIVERED, outbox.SENDING, outbox.UNCERTAIN) \
                and group_id is not None:
            outbox.enqueue(conn, platform=platform, actions=[("moderation", UnmuteMember(
                group_id=group_id, member_id=member_id, reason="误判，已撤销禁言"))],
                capabilities=capabilities(platform), key_prefix=f"overturn:{row['id']}:mute",
                now=now)
            out["unmuted"] += 1
        elif restore and status in (outbox.DELIVERED, outbox.SENDING, outbox.UNCERTAIN) \
                and group_id is not None and (platform, group_id) not in restored:
            restored.add((platform, group_id))
            outbox.enqueue(conn, platform=platform, actions=[("moderation", RestoreMember(
                group_id=group_id, member_id=member_id, reason="误判，已撤销移出"))],
                capabilities=capabilities(platform), key_prefix=f"overturn:{row['id']}",
                now=now)
            out["restored"] += 1
    return out


# The engine writes its reasons in Chinese (they are stored with each decision and shown to
# the team that wrote the word lists). Read in another language, each known form is said
# again from the catalog with its values; an unknown form stays as written.
_REASON_FORMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^命中词库「(?P<name>.+)」: (?P<word>.+)$"), "mod.reason.list"),
    (re.compile(r"^刷屏：(?P<seconds>\d+) 秒内 (?P<n>\d+) 条$"), "mod.reason.flood"),
    (re.compile(r"^重复消息：(?P<minutes>\d+) 分钟内第 (?P<n>\d+) 次$"), "mod.reason.repeat"),
    (re.compile(r"^(?P<minutes>\d+) 分钟内 (?P<n>\d+) 人发了同样的广告$"), "mod.reason.crowd"),
)


@cache
def _fixed_reasons() -> dict[str, str]:
    from qunyun.engine.moderation import fixed_reasons
    from qunyun.engine.rules.moderation import STALE_NOTE

    return {**fixed_reasons(), STALE_NOTE: "stale"}


def reason_in(text: str, language: str) -> str:
    """A stored moderation reason in the reader's language."""
    if language == "zh-CN":
        return text
    code = _fixed_reasons().get(text)
    if code:
        return translate(f"mod.reason.{code}", language)
    for pattern, key in _REASON_FORMS:
        found = pattern.match(text)
        if found:
            return fill(key, found.groupdict(), language)
    return text


def reasons_in(reasons: Iterable[str], language: str) -> str:
    """A decision's reasons as one line in the reader's language."""
    return ("；" if language == "zh-CN" else "; ").join(reason_in(r, language) for r in reasons)
