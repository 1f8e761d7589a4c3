"""A chat export's history applied in batches: people, memberships, member events.

A recruiting group's export holds a system notice every 15–20 rows (joins, recalls, pats,
removals). Stored one event at a time through ``do_ingest_event`` — each splitting the file
into a new segment for its messages — 100,000 rows took minutes. Here a file read by DuckDB
is applied a window of ``WINDOW_ROWS`` rows at a time, each in a constant number of passes,
with the same result as the row-by-row path (a test compares the two stores on
notice-heavy files, also with windows of a few rows). Per window:

1. **Plan** (no database): speakers' first appearances and notices merged in file order,
   so the translator learns names and resolves people exactly as the row path would, and
   every person reference is listed in the order the row path resolves it.
2. **People** (:class:`People`): the identities named anywhere in the file are read in
   bulk; people not known get numbers in order of first appearance and are written in bulk;
   a wxid seen after its nickname was named in a notice joins that nickname's member.
3. **Spans**: each member's messages in each group are cut at that member's own join and
   leave notices (a DuckDB ``ASOF`` join), so a span belongs to one membership — a notice
   about one person no longer splits everybody's messages.
4. **Timeline**: per (member, group), spans and notices in file order through the same
   rules ingest applies (implied memberships, joins after their own leave, removals),
   starting from what the store held.
5. **Writes** in bulk: members, identities, memberships, member events and their counts,
   inbound events (the dedupe keys: a re-import adds nothing), renames.

One module on purpose: its passes share the plan's state (people, timeline, windows), and
splitting them would pass that state through every call.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, func, select, update

from qunyun.adapters.platforms.exports.formats import ExportRow
from qunyun.adapters.storage.sql import bulk_insert_ignore, in_id_list, in_text_list
from qunyun.adapters.storage.tables import (
    counters,
    groups,
    identities,
    inbound_events,
    member_events,
    members,
    memberships,
)
from qunyun.domain import history as history_kinds
from qunyun.domain.events import (
    DomainEvent,
    GroupNotice,
    GroupRenamed,
    LeaveScene,
    MemberJoined,
    MemberLeft,
    MessageRecalled,
    PersonRef,
)
from qunyun.services import history
from qunyun.services import memberships as memberships_service
from qunyun.services.members import MEMBER_NUMBER_COUNTER, current_member_number

if TYPE_CHECKING:
    from qunyun.adapters.platforms.exports.columnar import MemoTraceFrame
    from qunyun.services.imports import _Importer

Key = tuple[str, str]  # (identity kind, external id)
LEAVE_KINDS = history_kinds.LEAVE_KINDS
CHUNK = 500
LOOKUP = 20_000
WINDOW_ROWS = 250_000  # rows of the file planned and written at a time


def _key(ref: PersonRef) -> Key:
    return (ref.kind, ref.external_id)


# --- people --------------------------------------------------------------------------------


@dataclass
class People:
    """``resolve_member`` and the importer's cache and nickname adoption, for a whole file
    at once: decisions in the row path's order, reads and writes in bulk."""

    conn: Connection
    platform: str
    ident: dict[Key, int] = field(default_factory=dict)  # identity → member (as stored)
    target: dict[int, int] = field(default_factory=dict)  # member → merged into
    ident_name: dict[Key, str] = field(default_factory=dict)
    member_name: dict[int, str] = field(default_factory=dict)
    cache: dict[Key, int] = field(default_factory=dict)  # the importer's member cache
    seen: dict[int, datetime] = field(default_factory=dict)  # member → last appearance
    new_members: list[dict[str, Any]] = field(default_factory=list)
    new_identities: list[dict[str, Any]] = field(default_factory=list)
    renamed: set[Key] = field(default_factory=set)
    next_number: int = 0
    _temp: int = 0  # new members get negative ids until they are written

    def settle(self, real: dict[int, int]) -> None:
        """After a window's writes: the temporary ids of its new members become the stored
        ones, and its new rows, renames and appearances are done with (the caller has
        handed the appearances on). What stays is what the next window must know: who is
        who, and whom the importer has already looked up."""
        if real:
            for known in (self.ident, self.cache):
                for key, mid in known.items():
                    if mid < 0:
                        known[key] = real[mid]
            self.member_name = {real.get(m, m): name for m, name in self.member_name.items()}
        self.new_members.clear()
        self.new_identities.clear()
        self.renamed.clear()
        self.seen.clear()

    def load(self, keys: Iterable[Key]) -> None:
        """Read the stored identities among ``keys``: one query per kind and ``LOOKUP``
        ids, the ids as one list parameter (a row-value IN list is not matched against the
        index on PostgreSQL, which then read the whole table; IN lists of 500 cost one
        round trip and one plan each)."""
        by_kind: dict[str, list[str]] = defaultdict(list)
        for kind, ext in sorted(set(keys)):
            if (kind, ext) not in self.ident:  # read or created by an earlier window
                by_kind[kind].append(ext)
        parts = [(kind, exts[i:i + LOOKUP]) for kind, exts in by_kind.items()
                 for i in range(0, len(exts), LOOKUP)]
        for kind_, part in parts:
            for mid, kind, ext, name, merged, member_name in self.conn.execute(
                    select(identities.c.member_id, identities.c.kind, identities.c.external_id,
                           identities.c.display_name, members.c.merged_into_id,
                           members.c.display_name)
                    .join(members, members.c.id == identities.c.member_id)
                    .where(identities.c.platform == self.platform,
                           identities.c.kind == kind_,
                           in_text_list(self.conn, identities.c.external_id, part))):
                self.ident[(kind, ext)] = int(mid)
                self.ident_name[(kind, ext)] = name
                self.member_name.setdefault(int(mid), member_name)
                if merged is not None:
                    self.target[int(mid)] = int(merged)
        merged_ids = set(self.target.values()) - set(self.member_name)
        for start in range(0, len(merged_ids), CHUNK):
            for mid, name in self.conn.execute(select(members.c.id, members.c.display_name)
                                               .where(members.c.id.in_(
                                                   sorted(merged_ids)[start:start + CHUNK]))):
                self.member_name[int(mid)] = name
        self.next_number = current_member_number(self.conn) + 1

    def _saw(self, mid: int, at: datetime) -> None:
        last = self.seen.get(mid)
        if last is None or at > last:
            self.seen[mid] = at

    def resolve(self, ref: PersonRef, at: datetime) -> tuple[int, bool]:
        """``resolve_member``: (member, whether this call created them)."""
        key = _key(ref)
        found = self.ident.get(key)
        if found is not None:
            mid = self.target.get(found, found)
            if ref.name and ref.name != self.ident_name.get(key):
                self.ident_name[key] = ref.name
                self.member_name[mid] = ref.name
                self.renamed.add(key)
            self._saw(mid, at)
            return mid, False
        self._temp -= 1
        mid = self._temp
        self.new_members.append({"temp": mid, "number": self.next_number,
                                 "display_name": ref.name, "at": at})
        self.next_number += 1
        self.ident[key] = mid
        self.ident_name[key] = ref.name
        self.member_name[mid] = ref.name
        self.new_identities.append({"member": mid, "kind": ref.kind,
                                    "external_id": ref.external_id, "name": ref.name,
                                    "weak": ref.weak, "at": at})
        self._saw(mid, at)
        return mid, True

    def member_id(self, ref: PersonRef, at: datetime) -> int:
        """The importer's cached look-up: ``resolve`` once per identity."""
        key = _key(ref)
        mid = self.cache.get(key)
        if mid is None:
            mid = self.cache[key] = self.resolve(ref, at)[0]
        else:
            self._saw(mid, at)
        return mid

    def adopt(self, nickname: PersonRef, ref: PersonRef, at: datetime) -> None:
        """A user id seen after its nickname was named in a notice joins that member."""
        key = _key(ref)
        if key in self.cache or not ref.name or key in self.ident:
            return
        weak = self.ident.get(_key(nickname))
        if weak is None:
            return
        self.ident[key] = weak
        self.ident_name[key] = ref.name
        self.new_identities.append({"member": weak, "kind": ref.kind,
                                    "external_id": ref.external_id, "name": ref.name,
                                    "weak": ref.weak, "at": at})
        self.cache[key] = weak

    def write(self) -> dict[int, int]:
        """Store the new members and identities and the renames; returns the new members'
        ids by their temporary ones."""
        real: dict[int, int] = {}
        if self.new_members:
            first = self.new_members[0]["number"]
            last = self.new_members[-1]["number"]
            bulk_insert_ignore(self.conn, members, (
                "number", "display_name", "created_at", "first_seen_at", "last_seen_at",
                "phone", "address"), [
                (m["number"], self.member_name[m["temp"]], m["at"], m["at"],
                 self.seen.get(m["temp"], m["at"]), "", "") for m in self.new_members],
                ["number"])
            by_number = dict(self.conn.execute(select(members.c.number, members.c.id).where(
                members.c.number >= first, members.c.number <= last)).all())
            real = {m["temp"]: int(by_number[m["number"]]) for m in self.new_members}
            self.conn.execute(update(counters).where(
                counters.c.name == MEMBER_NUMBER_COUNTER).values(value=last))
        if self.new_identities:
            bulk_insert_ignore(self.conn, identities, (
                "member_id", "platform", "kind", "external_id", "display_name", "weak",
                "created_at"), [
                (real.get(i["member"], i["member"]), self.platform, i["kind"],
                 i["external_id"], self.ident_name[(i["kind"], i["external_id"])], i["weak"],
                 i["at"]) for i in self.new_identities],
                ["platform", "kind", "external_id"])
        stored = [k for k in self.renamed if self.ident.get(k, -1) > 0]
        if stored:
            self.conn.execute(
                update(identities).where(identities.c.platform == self.platform,
                                         identities.c.kind == bindparam("k"),
                                         identities.c.external_id == bindparam("e"))
                .values(display_name=bindparam("n")),
                [{"k": k, "e": e, "n": self.ident_name[(k, e)]} for k, e in stored])
            renamed = {self.target.get(self.ident[k], self.ident[k]) for k in stored}
            self.conn.execute(update(members).where(members.c.id == bindparam("m"))
                              .values(display_name=bindparam("n")),
                              [{"m": m, "n": self.member_name[m]} for m in sorted(renamed)])
        return real


# --- the timeline of one member in one group -------------------------------------------------


@dataclass
class _Membership:
    """A membership as it will be stored: ``id`` when it is stored already."""

    member: int
    group: int
    joined_at: datetime
    scene: str
    channel: str = ""
    observed: bool = True
    inviter: int | None = None
    left_at: datetime | None = None
    leave_scene: str | None = None
    first: datetime | None = None
    last: datetime | None = None
    id: int | None = None
    changed: bool = False
    order: int = 0  # when the row path would have created it (stored ones: 0)


@dataclass
class _Pair:
    """What the store knew of one member in one group, and what the file does to it."""

    open: _Membership | None = None
    in_group: bool = False
    periods: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    leaves: list[datetime] = field(default_factory=list)  # sorted leave times


@dataclass
class Timeline:
    """Memberships, member events and inbound events of a file, decided in file order."""

    conn: Connection
    platform: str
    pairs: dict[tuple[int, int], _Pair] = field(default_factory=dict)
    new: list[_Membership] = field(default_factory=list)
    stored: list[_Membership] = field(default_factory=list)  # open ones the store had
    events: list[dict[str, Any]] = field(default_factory=list)
    inbound: list[tuple[Any, ...]] = field(default_factory=list)
    renames: dict[int, tuple[str, datetime]] = field(default_factory=dict)
    _order: int = 0

    def load(self, pairs: Iterable[tuple[int, int]]) -> None:
        """The stored memberships and leaves of the (member, group) pairs that existed."""
        wanted = sorted({p for p in pairs if p[0] > 0})
        for p in wanted:
            self.pairs[p] = _Pair()
        people = sorted({m for m, _g in wanted})
        # by member (an index reads them), the ids as one list parameter (IN lists of 500
        # were 200 statements a window once a big group's regulars spoke in every window);
        # pairs not asked about are dropped here
        m = memberships.c
        for start in range(0, len(people), LOOKUP):
            part = people[start:start + LOOKUP]
            for row in self.conn.execute(select(
                    m.id, m.member_id, m.group_id, m.joined_at, m.left_at, m.join_scene,
                    m.first_message_at, m.last_message_at).where(
                    in_id_list(self.conn, m.member_id, part)).order_by(m.id)).mappings():
                pair = self.pairs.get((int(row["member_id"]), int(row["group_id"])))
                if pair is None:
                    continue
                pair.periods.append((row["joined_at"], row["left_at"]))
                if row["left_at"] is None:
                    pair.open = _Membership(
                        member=int(row["member_id"]), group=int(row["group_id"]),
                        joined_at=row["joined_at"], scene=row["join_scene"], id=int(row["id"]),
                        first=row["first_message_at"], last=row["last_message_at"])
                    pair.in_group = True
                    self.stored.append(pair.open)  # kept: a leave in the file closes it
            for mid, gid, at in self.conn.execute(
                    select(member_events.c.member_id, member_events.c.group_id,
                           member_events.c.occurred_at).where(
                        in_id_list(self.conn, member_events.c.member_id, part),
                        member_events.c.kind.in_(LEAVE_KINDS))):
                leaving = self.pairs.get((int(mid), int(gid)))
                if leaving is not None:
                    bisect.insort(leaving.leaves, at)

    def pair(self, member: int, group: int) -> _Pair:
        found = self.pairs.get((member, group))  # not setdefault: it would build a _Pair
        if found is None:                         # on every call (one per notice and span)
            found = self.pairs[(member, group)] = _Pair()
        return found

    def _create(self, m: _Membership) -> _Membership:
        self._order += 1
        m.order = self._order
        self.new.append(m)
        return m

    # the rules of ``ingest._apply``, in file order -------------------------------------
    def spoke(self, member: int, group: int, first: datetime, last: datetime) -> None:
        pair = self.pair(member, group)
        if not pair.in_group:
            covered = any(j <= first and (left is None or left >= first)
                          for j, left in pair.periods)
            if not covered:  # speaking implies a membership we did not see begin
                pair.open = self._create(_Membership(member, group, first, "unknown",
                                                     observed=False))
                pair.periods.append((first, None))
            pair.in_group = True
        m = pair.open
        if m is not None and m.joined_at <= last:  # earlier talk belongs to an earlier one
            m.first = first if m.first is None or m.first > first else m.first
            m.last = last if m.last is None or m.last < last else m.last
            m.changed = True

    def joined(self, event: MemberJoined, member: int, group: int, inviter: int | None,
               created: bool) -> None:
        pair = self.pair(member, group)
        if created or pair.open is None:
            later = None
            if not created:  # a join that arrives after its own leave opens a closed one
                i = bisect.bisect_right(pair.leaves, event.occurred_at)
                later = pair.leaves[i] if i < len(pair.leaves) else None
            m = self._create(_Membership(member, group, event.occurred_at, event.scene.value,
                                         channel=event.channel, inviter=inviter,
                                         left_at=later))
            pair.periods.append((event.occurred_at, later))
            if later is None:
                pair.open = m
        pair.in_group = True
        self._event("joined", member, group, event, actor=inviter,
                    data={"scene": event.scene.value, "channel": event.channel})

    def left(self, event: MemberLeft, member: int, group: int, by: int | None) -> None:
        pair = self.pair(member, group)
        m = pair.open
        if m is not None:
            m.left_at, m.leave_scene, m.changed = event.occurred_at, event.scene.value, True
            pair.periods = [(j, event.occurred_at if left is None and j == m.joined_at
                             else left) for j, left in pair.periods]
            pair.open = None
        pair.in_group = False
        bisect.insort(pair.leaves, event.occurred_at)
        self._event(history_kinds.leave_kind(event), member, group, event, actor=by,
                    data={"scene": event.scene.value})

    def _event(self, kind: str, member: int | None, group: int, event: DomainEvent, *,
               actor: int | None = None, data: dict[str, Any] | None = None) -> None:
        self.events.append({"member": member, "group": group, "kind": kind,
                            "at": event.occurred_at, "actor": actor, "data": data or {},
                            "event": event.external_event_id})

    def other(self, event: DomainEvent, group: int, member: int | None,
              actor: int | None) -> None:
        match event:
            case MessageRecalled():
                self._event("recalled", member, group, event,
                            data={"message_id": event.message_id})
            case GroupRenamed():
                self.renames[group] = (event.new_name, event.occurred_at)
                self._event("group_renamed", None, group, event, actor=actor,
                            data={"new_name": event.new_name})
            case GroupNotice():
                self._event(event.notice, member, group, event,
                            data={"targets": list(event.targets)})

    # writes -----------------------------------------------------------------------------
    def write(self, real: dict[int, int]) -> None:
        def rid(mid: int | None) -> int | None:
            return None if mid is None else real.get(mid, mid)

        inbound_ids: dict[str, int] = {}
        if self.inbound:
            before = self.conn.execute(select(func.coalesce(func.max(inbound_events.c.id), 0))
                                       ).scalar_one()
            bulk_insert_ignore(self.conn, inbound_events, (
                "platform", "external_event_id", "event_kind", "received_at", "occurred_at",
                "status", "rules_fired", "rule_errors", "stale_actions"), self.inbound,
                ["platform", "external_event_id"])
            # the rows just written, in one read (by key: a concurrent writer's rows are
            # simply not looked up)
            inbound_ids.update(self.conn.execute(
                select(inbound_events.c.external_event_id, inbound_events.c.id).where(
                    inbound_events.c.id > before,
                    inbound_events.c.platform == self.platform)).all())
        if self.new:
            memberships_service.add_many(self.conn, [
                (rid(m.member), m.group, m.joined_at, m.scene, rid(m.inviter), m.channel,
                 m.observed, m.left_at, m.leave_scene, m.first, m.last)
                for m in sorted(self.new, key=lambda m: m.order)])
        memberships_service.update_many(self.conn, [
            {"id": m.id, "left_at": m.left_at, "leave_scene": m.leave_scene,
             "first_message_at": m.first, "last_message_at": m.last}
            for m in self.stored if m.changed])
        history.append_many(self.conn, [
            {"member_id": rid(e["member"]), "group_id": e["group"], "kind": e["kind"],
             "at": e["at"], "actor_id": rid(e["actor"]), "data": e["data"],
             "inbound_id": inbound_ids.get(e["event"])} for e in self.events], bulk=True)
        for gid, (name, at) in self.renames.items():
            self.conn.execute(update(groups).where(groups.c.id == gid)
                              .values(name=name, updated_at=at))


# --- the columnar import -----------------------------------------------------------------------


def _stamp(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def import_frame(importer: _Importer, frame: MemoTraceFrame, *, for_postgres: bool) -> None:
    """A whole MemoTrace file read by DuckDB, applied in batches (see the module's text):
    the history first, then the messages, streamed — by then the history's planning state
    (every notice, event and person of the file) is gone, so it does not sit beside the
    message stream's buffers at the import's peak."""
    # every name a group's members speak under, the file's later speakers included, is known
    # when a list of names in a notice is read; so is who "you" (the exporter) are
    importer.translate.prime(frame.speaker_names())
    people = People(importer.conn, importer.platform)
    # a window at a time, so the planning state is a window's, not the file's (a 2.5M-row
    # recruiting export held 1.9 GB of it whole); who is who carries over in ``people``
    for low in range(1, frame.last_rn + 1, WINDOW_ROWS):
        high = low + WINDOW_ROWS
        who = _apply_history(importer, frame, people, low, high)
        for chunk in frame.segment(low - 1, high, who, for_postgres=for_postgres):
            importer._store(chunk, ready=True)


def _apply_history(importer: _Importer, frame: MemoTraceFrame, people: People, low: int,
                   high: int) -> dict[tuple[str, str, str], tuple[int, int | None]]:
    """Steps 1–5 of the module's text for the rows low ≤ rn < high; returns each speaker's
    (group, stored member)."""
    conn, report, translate = importer.conn, importer.report, importer.translate
    speakers = frame.speakers_all(low, high)
    notices = frame.notice_rows(low, high)

    # 1. plan: speakers' first appearances and notices in file order --------------------
    Step = tuple[str, Any]
    steps: list[tuple[int, int, Step]] = []
    for s in speakers:
        steps.append((int(s[4]), 0, ("speaker", s)))
    for n in notices:
        steps.append((int(n[0]), 1, ("notice", n)))
    steps.sort(key=lambda t: (t[0], t[1]))
    calls: list[tuple[str, Any, datetime, Any]] = []  # (op, ref, at, extra) in row order
    planned: list[tuple[ExportRow, list[DomainEvent]]] = []
    groups_of: dict[str, int] = {}
    for _rn, _kind, (what, item) in steps:
        if what == "speaker":
            talker, chat_name, sender, name, _first_rn, first_e, _last_e, _last_rn, is_self = \
                item
            probe = ExportRow(line=0, chat_id=talker, chat_name=chat_name, at=_stamp(first_e),
                              sender_id=sender, sender_name=name, text="",
                              message_type="text", key="", is_self=bool(is_self))
            groups_of[talker] = importer.group_id(probe)
            translate.learn(probe)
            ref = translate.sender(probe)
            if ref is not None and not ref.weak:
                calls.append(("adopt", ref, probe.at, translate.nickname(talker, ref.name)))
            calls.append(("speaker", ref, probe.at, item))
        else:
            rn, talker, chat_name, epoch, key, content = item
            row = ExportRow(line=rn + 1, chat_id=talker, chat_name=chat_name,
                            at=_stamp(epoch), sender_id="", sender_name="", text=content,
                            message_type="system", key=key)
            groups_of[talker] = importer.group_id(row)
            unsure = len(translate.ambiguous)
            events = list(translate.notice_events(row))
            for listed in translate.ambiguous[unsure:]:
                report.ambiguous_names.append({"line": row.line, "names": listed})
            if not events:
                report.unparsed_notices += 1
                continue
            planned.append((row, events))

    # duplicates: notices applied before (a re-import) change nothing and resolve nobody
    ids = [e.external_event_id for _row, events in planned for e in events]
    done: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        done.update(conn.execute(select(inbound_events.c.external_event_id).where(
            inbound_events.c.platform == importer.platform,
            inbound_events.c.external_event_id.in_(ids[start:start + CHUNK]))).scalars())

    # 2. people, in the row path's order ----------------------------------------------
    refs: list[PersonRef] = []
    for op, ref, _at, extra in calls:
        if ref is not None:
            refs.append(ref)
        if op == "adopt":
            refs.append(extra)
    for _row, events in planned:
        for e in events:
            refs.extend(r for r in _refs(e) if r is not None)
    people.load(_key(r) for r in refs)
    who: dict[tuple[str, str, str], tuple[int, int | None]] = {}
    timeline = Timeline(conn, importer.platform)
    # the speakers' and the notices' resolutions interleave in file order
    merged: list[tuple[int, int, Any]] = []
    for i, (op, _ref, _at, extra) in enumerate(calls):
        rn = int(extra[4]) if op == "speaker" else 0
        merged.append((rn, 0, ("call", i)))
    # adopt calls sit right before their speaker call: give them the speaker's rn
    for i, (op, _ref, _at, _extra) in enumerate(calls):
        if op == "adopt":
            merged[i] = (merged[i + 1][0], 0, ("call", i))
    for j, (row, _events) in enumerate(planned):
        merged.append((row.line - 1, 1, ("notice", j)))
    merged.sort(key=lambda t: (t[0], t[1]))
    notice_people: dict[int, list[list[tuple[int | None, bool]]]] = {}
    for _rn, _order, (what, idx) in merged:
        if what == "call":
            op, ref, at, extra = calls[idx]
            if op == "adopt":
                people.adopt(extra, ref, at)
                continue
            talker, _chat_name, sender, name = extra[0], extra[1], extra[2], extra[3]
            mid = people.member_id(ref, at) if ref is not None else None
            if mid is not None:
                people._saw(mid, _stamp(extra[6]))
            who[(talker, sender, name)] = (groups_of[talker], mid)
            continue
        row, events = planned[idx]
        resolved: list[list[tuple[int | None, bool]]] = []
        for e in events:
            if e.external_event_id in done:
                resolved.append([])
                continue
            got: list[tuple[int | None, bool]] = [
                people.resolve(r, e.occurred_at) if r is not None else (None, False)
                for r in _refs(e)]
            for actor in actor_refs(e):  # the row path looks actors up through its cache
                people.member_id(actor, row.at)
            resolved.append(got)
        notice_people[idx] = resolved

    # 3. spans: each member's messages cut at their own join and leave notices ----------
    cuts: list[tuple[int, int, int]] = []
    for j, (row, events) in enumerate(planned):
        for e, got in zip(events, notice_people[j], strict=True):
            if got and isinstance(e, MemberJoined | MemberLeft) and got[0][0] is not None:
                cuts.append((groups_of[row.chat_id], got[0][0], row.line - 1))
    pairs = {(mid, gid) for gid, mid in who.values() if mid is not None}
    pairs |= {(mid, gid) for gid, mid, _rn in cuts}
    timeline.load(pairs)
    spans = frame.spans(who, cuts, low, high) if who else []

    # 4. the timeline: spans and notices in file order ------------------------------------
    items: list[tuple[int, int, Any]] = []
    for gid, mid, _cut, first_rn, first_e, last_e in spans:
        items.append((int(first_rn), 0, ("span", int(gid), int(mid), first_e, last_e)))
    for j, (row, _events) in enumerate(planned):
        items.append((row.line - 1, 1, ("notice", j)))
    items.sort(key=lambda t: (t[0], t[1]))
    for _rn, _order, item in items:
        if item[0] == "span":
            _what, gid, mid, first_e, last_e = item
            timeline.spoke(mid, gid, _stamp(first_e), _stamp(last_e))
            continue
        row, events = planned[item[1]]
        gid = groups_of[row.chat_id]
        for e, got in zip(events, notice_people[item[1]], strict=True):
            if not got:
                continue  # stored before
            timeline.inbound.append((importer.platform, e.external_event_id, e.kind,
                                     importer.now, e.occurred_at, "processed", "[]", "[]", 0))
            match e:
                case MemberJoined():
                    (mid, created), (inviter, _c) = got[0], (got[1] if len(got) > 1
                                                             else (None, False))
                    assert mid is not None
                    timeline.joined(e, mid, gid, inviter, created)
                    report.joins += 1
                case MemberLeft():
                    mid = got[0][0]
                    assert mid is not None
                    by = got[1][0] if len(got) > 1 else None
                    timeline.left(e, mid, gid, by)
                    if e.scene is LeaveScene.REMOVED:
                        report.kicks += 1
                    else:
                        report.leaves += 1
                case GroupRenamed():
                    timeline.other(e, gid, None, got[0][0] if got else None)
                    report.renames += 1
                case MessageRecalled():
                    timeline.other(e, gid, got[0][0], None)
                    report.recalls += 1
                case GroupNotice():
                    timeline.other(e, gid, got[0][0], None)
                    report.other_notices[e.notice] = report.other_notices.get(e.notice, 0) + 1

    # 5. writes --------------------------------------------------------------------------
    real = people.write()
    timeline.write(real)
    for (talker, sender, name), (gid, mid) in list(who.items()):
        who[(talker, sender, name)] = (gid, real.get(mid, mid) if mid is not None else None)
    for mid, at in people.seen.items():
        member = real.get(mid, mid)
        if mid < 0:  # written with their last appearance already
            importer.members_counted.add(member)
            continue
        last = importer.members_seen.get(member)
        if last is None or at > last:
            importer.members_seen[member] = at
    for (m, g), p in timeline.pairs.items():
        if p.in_group:
            importer.in_group.add((real.get(m, m), g))
        else:
            importer.in_group.discard((real.get(m, m), g))
    people.settle(real)
    return who


def _refs(event: DomainEvent) -> list[PersonRef | None]:
    """The people ``do_ingest_event`` resolves for an event, in its order."""
    match event:
        case MemberJoined():
            return [event.member, event.inviter]
        case MemberLeft():
            return [event.member, event.by]
        case GroupRenamed():
            return [event.by]
        case MessageRecalled():
            return [event.sender]
        case GroupNotice():
            return [event.actor]
    return []


def actor_refs(event: DomainEvent) -> Sequence[PersonRef]:
    """The people a notice names besides its subject (who invited, removed, renamed)."""
    match event:
        case MemberJoined() if event.inviter is not None:
            return [event.inviter]
        case MemberLeft() if event.by is not None:
            return [event.by]
        case GroupRenamed() if event.by is not None:
            return [event.by]
    return []
