"""Chat-export import (F32): stream a file into the store, all or nothing per file.

Member messages (nearly every row) take a batched path: members resolved through a cache,
messages inserted in executemany batches, deduplicated by (group, stable message key).
System notices become domain events and go through ``do_ingest_event`` with no rules, so
joins, leaves, removals and renames are stored exactly as live events are; their event ids
come from the notice's own key, so a re-import or an overlapping export adds nothing twice.
Rules do not run on history: nobody is welcomed two years late. A MemoTrace file whose
rows DuckDB reads whole takes the batch path instead (``import_history``): the same rules
for people, memberships and events, decided in file order, written in bulk.

One module on purpose: the row reader's importer and the file-level transaction share
the importer's state; the batch path for MemoTrace lives in ``import_history``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection, bindparam, or_, select, update

from qunyun.adapters.platforms.exports.columnar import (
    MemoTraceFrame,
    open_memotrace,
)
from qunyun.adapters.platforms.exports.formats import (
    READERS,
    ExportError,
    ExportRow,
    RowError,
    detect_format,
)
from qunyun.adapters.platforms.exports.snapshots import detect_snapshot_format, read_snapshots
from qunyun.adapters.platforms.exports.translate import TRANSLATORS, ExportTranslator
from qunyun.adapters.storage.sql import (
    index_built_after,
    refresh_statistics,
)
from qunyun.adapters.storage.tables import (
    groups,
    identities,
    inbound_events,
    member_events,
    members,
    memberships,
    messages,
)
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.clock import Clock
from qunyun.domain import storable
from qunyun.domain.events import (
    ChatRef,
    GroupNotice,
    GroupRenamed,
    LeaveScene,
    MemberJoined,
    MemberLeft,
    MessageRecalled,
    PersonRef,
)
from qunyun.domain.staff import Permission
from qunyun.services import audit, tags
from qunyun.services import memberships as memberships_service
from qunyun.services import messages as chat_messages
from qunyun.services.errors import InvalidInput
from qunyun.services.groups import upsert_group
from qunyun.services.import_history import actor_refs, import_frame
from qunyun.services.ingest import NO_RULES, do_ingest_event
from qunyun.services.members import (
    attach_identity,
    current_member_number,
    find_identity,
    resolve_member,
)
from qunyun.services.users import Actor

FORMATS = tuple(READERS)
BATCH = 5000
# messages arrive in time order within a group but in random member order: this index is
# the costly one to keep up to date row by row (see ``index_built_after``)
MEMBER_INDEX = next(ix for ix in messages.indexes if ix.name == "ix_messages_member_sent")


class ImportFailed(Exception):
    """A file could not be imported; nothing of it was stored."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.error = {"file": str(path), "line": line, "reason": reason}


@dataclass
class FileReport:
    file: str
    format: str
    reader: str = "rows"  # "columnar" when DuckDB read the file whole
    groups: int = 0
    members: int = 0
    new_members: int = 0
    messages: int = 0
    duplicate_messages: int = 0
    joins: int = 0
    leaves: int = 0
    kicks: int = 0
    renames: int = 0
    recalls: int = 0
    other_notices: dict[str, int] = field(default_factory=dict)
    unparsed_notices: int = 0
    # lists of names that read two ways (a known "黎丽、Amy" and a known "黎丽" and "Amy")
    ambiguous_names: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    rule_tags_changed: int = 0
    group_ids: set[int] = field(default_factory=set)
    member_ids: set[int] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("group_ids", "member_ids")}


class _Counting(io.RawIOBase):
    """Counts bytes read so a progress bar can follow a text stream."""

    def __init__(self, raw: BinaryIO, on_read: Callable[[int], None]) -> None:
        self.raw = raw
        self.on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)  # type: ignore[attr-defined]
        self.on_read(n or 0)
        return n or 0


class _Importer:
    def __init__(self, conn: Connection, path: Path, fmt: str, report: FileReport,
                 now: datetime) -> None:
        self.conn = conn
        self.path = path
        self.translate = TRANSLATORS[fmt]()
        self.platform = self.translate.platform
        self.report = report
        self.now = now
        self.groups: dict[str, int] = {}
        self.member_cache: dict[tuple[str, str], int] = {}
        self.members_seen: dict[int, datetime] = {}
        self.in_group: set[tuple[int, int]] = set()
        self.batch: list[tuple[Any, ...]] = []
        # (member, group) -> first and last message time not yet written to the membership
        self.spans: dict[tuple[int, int], tuple[datetime, datetime]] = {}
        self.messages = chat_messages.Batches(conn)  # and the members' totals
        self.rows = 0  # rows read from the file (messages, notices, bad rows)
        # members the batch path wrote with their last appearance: counted, not updated
        self.members_counted: set[int] = set()

    # -- people ---------------------------------------------------------------------------
    def member_id(self, ref: PersonRef, at: datetime) -> int:
        key = (ref.kind, ref.external_id)
        cached = self.member_cache.get(key)
        if cached is None:
            resolved = resolve_member(self.conn, platform=self.platform, ref=ref, at=at)
            cached = self.member_cache[key] = resolved.id
        last = self.members_seen.get(cached)
        if last is None or at > last:
            self.members_seen[cached] = at
        return cached

    def _adopt_nickname(self, chat: str, ref: PersonRef, at: datetime) -> None:
        """A notice named this person before their first message showed their user id: give
        the nickname-only member the id instead of creating a second member."""
        key = (ref.kind, ref.external_id)
        if key in self.member_cache or not ref.name:
            return
        if find_identity(self.conn, platform=self.platform, kind=ref.kind,
                         external_id=ref.external_id) is not None:
            return
        nick = self.translate.nickname(chat, ref.name)
        weak = find_identity(self.conn, platform=self.platform, kind=nick.kind,
                             external_id=nick.external_id)
        if weak is not None and attach_identity(self.conn, member_id=weak,
                                                platform=self.platform, ref=ref, at=at):
            self.member_cache[key] = weak

    def group_id(self, row: ExportRow) -> int:
        gid = self.groups.get(row.chat_id)
        if gid is None:
            # The export's name only names a new group: a rename seen in the file (or a name an
            # operator set) must not be reverted by the file name on a later import.
            known = self.conn.execute(select(groups.c.id).where(
                groups.c.platform == self.platform, groups.c.external_id == row.chat_id)
            ).scalar()
            gid = int(known) if known is not None else upsert_group(
                self.conn, platform=self.platform,
                chat=ChatRef(external_id=row.chat_id, name=row.chat_name), at=row.at)
            self.groups[row.chat_id] = gid
            self.in_group.update((m, gid) for m in self.conn.execute(
                select(memberships.c.member_id).where(memberships.c.group_id == gid,
                                                      memberships.c.left_at.is_(None))
            ).scalars())
            # names the group already has, to read lists of names in notices against
            self.translate.know(row.chat_id, self.conn.execute(
                select(identities.c.display_name).distinct()
                .join(memberships, memberships.c.member_id == identities.c.member_id)
                .where(memberships.c.group_id == gid, identities.c.platform == self.platform)
            ).scalars())
        return gid

    # -- rows ---------------------------------------------------------------------------
    def message(self, row: ExportRow) -> None:
        gid = self.group_id(row)
        self.translate.learn(row)
        ref = self.translate.sender(row)
        mid: int | None = None  # a row that names nobody (ragged export) has no member
        if ref is not None:
            if not ref.weak:
                self._adopt_nickname(row.chat_id, ref, row.at)
            mid = self.member_id(ref, row.at)
        if mid is not None:
            self._spoke(mid, gid, row.at, row.at)
        self.batch.append((gid, mid, row.key, row.at, "in", row.message_type, row.text, False))
        if len(self.batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        self._store(self.batch)
        self.batch.clear()

    def _store(self, rows: list[tuple[Any, ...]], *, ready: bool = False) -> None:
        """Store a batch of message rows (``messages.COLUMNS`` order)."""
        added = self.messages.add(rows, ready=ready)
        self.report.messages += added
        self.report.duplicate_messages += len(rows) - added

    def notice(self, row: ExportRow) -> None:
        self.group_id(row)
        unsure = len(self.translate.ambiguous)
        events = list(self.translate.notice_events(row))
        for listed in self.translate.ambiguous[unsure:]:
            self.report.ambiguous_names.append({"line": row.line, "names": listed})
        if not events:
            self.report.unparsed_notices += 1
            return
        self.flush()  # keep stored order: messages before the notice that follows them
        if any(isinstance(e, MemberLeft) for e in events):
            self.flush_spans()  # messages so far belong to the membership about to close
        for event in events:
            result = do_ingest_event(self.conn, event, config=NO_RULES, received_at=self.now)
            if result.duplicate:
                continue
            match event:
                case MemberJoined():
                    self.report.joins += 1
                case MemberLeft() if event.scene is LeaveScene.REMOVED:
                    self.report.kicks += 1
                case MemberLeft():
                    self.report.leaves += 1
                case GroupRenamed():
                    self.report.renames += 1
                case MessageRecalled():
                    self.report.recalls += 1
                case GroupNotice():
                    other = self.report.other_notices
                    other[event.notice] = other.get(event.notice, 0) + 1
            for actor in actor_refs(event):  # inviters, removers, renamers count too
                self.member_id(actor, row.at)
            if result.member_id is not None:
                self.members_seen.setdefault(result.member_id, row.at)
                if isinstance(event, MemberJoined) and result.group_id is not None:
                    self.in_group.add((result.member_id, result.group_id))
                if isinstance(event, MemberLeft) and result.group_id is not None:
                    self.in_group.discard((result.member_id, result.group_id))

    def columnar(self, frame: MemoTraceFrame) -> None:
        """The whole file from DuckDB, people, memberships and events in batches
        (``import_history``), messages in bulk."""
        for_postgres = self.conn.dialect.name == "postgresql"
        with index_built_after(self.conn, MEMBER_INDEX, incoming=frame.rows):
            import_frame(self, frame, for_postgres=for_postgres)

    def _spoke(self, mid: int, gid: int, first: datetime, last: datetime) -> None:
        """Someone spoke in a group between ``first`` and ``last``: widen their pending span
        and give them a membership if we never saw them join."""
        span = self.spans.get((mid, gid))
        self.spans[(mid, gid)] = ((first, last) if span is None else
                                  (min(span[0], first), max(span[1], last)))
        if (mid, gid) not in self.in_group:
            if not self._was_member(mid, gid, first):
                memberships_service.add_implied(self.conn, member_id=mid, group_id=gid, at=first)
            self.in_group.add((mid, gid))

    def _was_member(self, mid: int, gid: int, at: datetime) -> bool:
        """Whether a stored membership already covers ``at`` (the file was imported before,
        and the member has left since): speaking then implies no new membership."""
        return self.conn.execute(select(memberships.c.id).where(
            memberships.c.member_id == mid, memberships.c.group_id == gid,
            memberships.c.joined_at <= at,
            or_(memberships.c.left_at.is_(None), memberships.c.left_at >= at)).limit(1)
        ).first() is not None

    def flush_spans(self) -> None:
        memberships_service.note_message_times_many(self.conn, self.spans)
        self.spans.clear()

    def finish(self) -> None:
        self.flush()
        self.flush_spans()
        self.messages.finish()
        if self.members_seen:
            self.conn.execute(
                update(members).where(members.c.id == bindparam("m_id"),
                                      members.c.last_seen_at < bindparam("m_at"))
                .values(last_seen_at=bindparam("m_at")),
                [{"m_id": k, "m_at": v} for k, v in self.members_seen.items()])
        self.report.group_ids = set(self.groups.values())
        self.report.member_ids = set(self.members_seen) | self.members_counted
        self.report.groups = len(self.report.group_ids)
        self.report.members = len(self.report.member_ids)


def _first_look(path: Path, reader: Any, group_name: str | None,
                day: date | None) -> Iterator[tuple[str, str, str, bool]]:
    """Who speaks under which name, read once before the import (see ``prime``): the row
    path then reads notices as the columnar path does. Bad rows are left to the import."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        try:
            for row in reader(path, fh, group_name, day):
                if isinstance(row, ExportRow) and row.message_type != "system" \
                        and row.sender_name:
                    yield row.chat_id, row.sender_name, row.sender_id, row.is_self
        except ExportError:
            return


def _check_format(path: Path, fmt: str) -> str:
    """The format to read ``path`` as: detected for ``auto``; a format forced on a file that
    plainly is another is refused, naming both (it used to read nothing and succeed)."""
    if fmt == "auto":
        try:
            return detect_format(path)
        except ExportError as exc:
            raise ImportFailed(path, exc.line, exc.reason) from None
    if fmt not in READERS:
        raise ImportFailed(path, 0, f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    try:
        looks = detect_format(path)
    except ExportError:
        return fmt  # nothing else it looks like: the person knows best
    if looks != fmt:
        raise ImportFailed(path, 1, f"this file looks like a {looks} export, not {fmt}: "
                           f"leave the format out (auto) or give {looks}")
    return fmt


def _unstorable(row: ExportRow) -> str | None:
    """A row whose text no database should take (NUL, a lone surrogate from a JSON escape),
    named by field."""
    for name in ("text", "sender_id", "sender_name", "chat_id", "chat_name"):
        problem = storable.text_problem(getattr(row, name))
        if problem:
            return f"{name}: {problem}"
    if row.service is not None and (problem := storable.first_problem(row.service)):
        return f"service: {problem}"
    return None


def do_import_file(
    uow: UnitOfWork, path: Path, *, fmt: str = "auto", group_name: str | None = None,
    on_error: str = "fail", actor: str = "system", now: datetime,
    progress: Callable[[int], None] | None = None, columnar: bool = True,
    rule_clock: Clock | None = None, day: date | None = None,
) -> FileReport:
    """Import one export file in one transaction.

    With ``rule_clock`` (the team's clock) rule tags are brought up to date at the end, in the
    same transaction; without it (benchmarks, tests) they wait for ``qunyun tags recompute``.

    ``on_error="fail"``: the first bad row raises :class:`ImportFailed` and nothing of the
    file is stored. ``"skip"``: bad rows are listed in the report and the rest is stored.
    A MemoTrace CSV whose rows are all valid is read column-wise by DuckDB (``columnar``);
    the stored result is the same as the row-by-row path's (a test compares them).
    """
    if not path.is_file():
        raise ImportFailed(path, 0, "no such file")
    fmt = _check_format(path, fmt)
    report = FileReport(file=str(path), format=fmt)
    reader = READERS[fmt]
    with uow.write() as conn, path.open("rb") as raw:
        counting = _Counting(raw, progress or (lambda n: None))
        text = io.TextIOWrapper(io.BufferedReader(counting), encoding="utf-8-sig",
                                errors="strict", newline="")
        importer = _Importer(conn, path, fmt, report, now)
        numbers_before = current_member_number(conn)
        frame = (open_memotrace(path, group_name) if columnar and fmt == "memotrace"
                 else None)
        if frame is None:
            importer.translate.prime(_first_look(path, reader, group_name, day))
        try:
            if frame is not None:  # DuckDB read it whole and every row is valid
                report.reader = "columnar"
                try:
                    importer.columnar(frame)
                finally:
                    frame.close()
                (progress or (lambda n: None))(path.stat().st_size)
            for row in (() if frame is not None else reader(path, text, group_name, day)):
                importer.rows += 1
                if isinstance(row, RowError):
                    if on_error == "fail":
                        raise ImportFailed(path, row.line, row.reason)
                    report.skipped += 1
                    report.errors.append({"file": str(path), "line": row.line,
                                          "reason": row.reason})
                elif problem := _unstorable(row):
                    if on_error == "fail":
                        raise ImportFailed(path, row.line, problem)
                    report.skipped += 1
                    report.errors.append({"file": str(path), "line": row.line,
                                          "reason": problem})
                elif row.message_type == "system":
                    importer.notice(row)
                else:
                    importer.message(row)
        except ExportError as exc:
            raise ImportFailed(path, exc.line, exc.reason) from None
        except UnicodeDecodeError as exc:
            raise ImportFailed(path, 0, f"not UTF-8 text ({exc.reason} at byte {exc.start})"
                               ) from None
        if frame is None and importer.rows == 0 and path.stat().st_size > 64:
            raise ImportFailed(path, 1, f"nothing in this file reads as a {fmt} export")
        importer.finish()
        refresh_statistics(conn, (members, identities, memberships, member_events,
                                  inbound_events, messages))
        # every member this file created (by a message or a notice) took a number
        report.new_members = current_member_number(conn) - numbers_before
        if rule_clock is not None:
            # bulk rows bypass ingest's incremental check: bring rule tags up to date here
            report.rule_tags_changed = tags.refresh_rule_tags(conn, rule_clock)
        audit.record(conn, actor=actor, action="import.file", object_type="file",
                     object_id=path.name, detail={k: v for k, v in report.as_dict().items()
                                                  if k != "errors"})
    return report


def upload_name(name: str) -> str:
    """The uploaded export's own file name, without any folders: it names the saved copy (a
    MemoTrace file's name is its group's name) and the report. Refused when empty."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if base in ("", ".", ".."):
        raise InvalidInput("name: the export's file name, e.g. 业主群_utf8.csv")
    if any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in base):
        raise InvalidInput("name: control characters are not allowed in a file name")
    if len(base.encode("utf-8")) > 255:
        raise InvalidInput("name: at most 255 bytes (a file system's limit)")
    return base


def check_upload(*, actor: Actor, name: str | None = None, fmt: str = "auto",
                 on_error: str = "fail") -> None:
    """What can be refused before a byte of an upload is read: the role (a viewer's 512 MB
    upload is not streamed to disk first), the format, the error mode and the name."""
    actor.require(Permission.OPERATE)
    if fmt != "auto" and fmt not in FORMATS:
        raise InvalidInput("format: auto or one of {formats}", formats=', '.join(FORMATS))
    if on_error not in ("fail", "skip"):
        raise InvalidInput("on_error: fail or skip")
    if name is not None:
        upload_name(name)


def do_import_upload(uow: UnitOfWork, *, actor: Actor, path: Path, fmt: str = "auto",
                     group_name: str | None = None, on_error: str = "fail", now: datetime,
                     rule_clock: Clock | None = None, day: date | None = None) -> FileReport:
    """An export uploaded through the API or the dashboard, saved by the web layer at
    ``path`` under its own name (``upload_name``). Staff who operate only; a file that
    fails is an InvalidInput naming the file and line, and nothing of it is stored."""
    check_upload(actor=actor, fmt=fmt, on_error=on_error)
    try:
        report = do_import_file(uow, path, fmt=fmt, group_name=group_name or None,
                                on_error=on_error, actor=actor.label, now=now,
                                rule_clock=rule_clock, day=day)
    except ImportFailed as exc:
        raise InvalidInput("{name}:{line}: {reason} (nothing of this file was imported)",
                           name=path.name, line=exc.error["line"],
                           reason=exc.error["reason"]) from None
    report.file = path.name
    for error in report.errors:
        error["file"] = path.name
    return report


@dataclass
class SnapshotReport:
    file: str
    format: str
    reader: str = "rows"  # "columnar" when DuckDB read the file whole
    groups: int = 0
    listed: int = 0
    joined_implied: int = 0
    left_derived: int = 0


def do_import_snapshot(uow: UnitOfWork, path: Path, *, at: datetime, fmt: str = "auto",
                       platform: str = "wechat", actor: str = "system") -> SnapshotReport:
    """Compare a member list taken at ``at`` with the store: members no longer listed get a
    leave (``basis="snapshot"``, at ``at``); listed people with no membership get an implied
    one. One transaction; a replayed snapshot changes nothing."""
    if not path.is_file():
        raise ImportFailed(path, 0, "no such file")
    try:
        fmt = detect_snapshot_format(path) if fmt == "auto" else fmt
        snapshots = read_snapshots(path, fmt)
    except ExportError as exc:
        raise ImportFailed(path, exc.line, exc.reason) from None
    except UnicodeDecodeError as exc:
        raise ImportFailed(path, 0, f"not UTF-8 text ({exc.reason})") from None
    translate = TRANSLATORS.get({"wechat": "memotrace", "telegram": "telegram",
                                 "irc": "irc"}.get(platform, ""), ExportTranslator)()
    report = SnapshotReport(file=str(path), format=fmt, groups=len(snapshots))
    with uow.write() as conn:
        for snap in snapshots:
            gid = upsert_group(conn, platform=platform,
                               chat=ChatRef(external_id=snap.chat_id, name=snap.chat_name),
                               at=at)
            listed: set[int] = set()
            for uid, name in snap.people:
                ref = (PersonRef(external_id=uid, kind=translate.user_kind, name=name)
                       if uid else translate.nickname(snap.chat_id, name))
                member = resolve_member(conn, platform=platform, ref=ref, at=at)
                listed.add(member.id)
            report.listed += len(listed)
            current = {int(m) for m in conn.execute(
                select(memberships.c.member_id).where(memberships.c.group_id == gid,
                                                      memberships.c.left_at.is_(None),
                                                      memberships.c.joined_at <= at))
                .scalars()}
            for mid in sorted(listed - current):
                if conn.execute(select(memberships.c.id).where(
                        memberships.c.group_id == gid, memberships.c.member_id == mid,
                        memberships.c.left_at.is_(None))).first() is None:
                    memberships_service.add_implied(conn, member_id=mid, group_id=gid, at=at)
                    report.joined_implied += 1
            for mid in sorted(current - listed):
                ident = conn.execute(select(identities.c.kind, identities.c.external_id)
                                     .where(identities.c.member_id == mid,
                                            identities.c.platform == platform)
                                     .order_by(identities.c.weak, identities.c.id)).first()
                if ident is None:
                    continue
                event = MemberLeft(
                    platform=platform, occurred_at=at,
                    external_event_id=f"snapshot:{snap.chat_id}:{at.isoformat()}:{mid}",
                    chat=ChatRef(external_id=snap.chat_id),
                    member=PersonRef(external_id=ident.external_id, kind=ident.kind),
                    scene=LeaveScene.LEFT, basis="snapshot")
                if not do_ingest_event(conn, event, config=NO_RULES, received_at=at).duplicate:
                    report.left_derived += 1
        audit.record(conn, actor=actor, action="import.snapshot", object_type="file",
                     object_id=path.name, detail=dict(report.__dict__))
    return report
