"""FAQ entries (F12): create, edit, import from CSV, list; matching itself is pure
(``engine.faq``). Every change bumps the automation version so the rules see it at once."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select, update

from qunyun.adapters.storage.tables import faqs, groups
from qunyun.clock import utcnow
from qunyun.domain.staff import Permission
from qunyun.engine.faq import MATCH_KINDS, FaqEntry, compile_regex
from qunyun.services import audit
from qunyun.services.attributes import decode_text
from qunyun.services.automation import bump_version
from qunyun.services.errors import InvalidInput, NotFound
from qunyun.services.users import Actor

MAX_QUESTIONS = 50
MAX_TEXT = 2000
MAX_FILE = 5 * 1024 * 1024


def _clean(*, questions: list[str], answer: str, match: str, pattern: str,
           cooldown_seconds: int) -> dict[str, Any]:
    qs = [q.strip() for q in questions if q.strip()]
    if not qs and match in {"fuzzy", "exact"}:
        raise InvalidInput("questions: give at least one phrasing")
    if len(qs) > MAX_QUESTIONS:
        raise InvalidInput("questions: at most {limit} phrasings",
                           limit=MAX_QUESTIONS)
    if any(len(q) > 200 for q in qs):
        raise InvalidInput("questions: at most 200 characters each")
    if not answer.strip():
        raise InvalidInput("answer: must not be empty")
    if len(answer) > MAX_TEXT:
        raise InvalidInput("answer: at most {limit} characters", limit=MAX_TEXT)
    if match not in MATCH_KINDS:
        raise InvalidInput("match: one of {match_kinds}", match_kinds=', '.join(MATCH_KINDS))
    if match in {"contains", "regex"} and not pattern.strip():
        raise InvalidInput("pattern: a {match} FAQ needs a pattern", match=match)
    if match == "regex":
        try:
            compile_regex(pattern.strip())
        except ValueError as exc:
            raise InvalidInput("pattern: not a regular expression RE2 accepts ({exc}); back "
                               "references and look-arounds are not supported",
                               exc=exc) from None
    if not 0 <= cooldown_seconds <= 86400:
        raise InvalidInput("cooldown_seconds: between 0 and 86400")
    return {"questions": "\n".join(qs), "answer": answer.strip(), "match": match,
            "pattern": pattern.strip(), "cooldown_seconds": cooldown_seconds}


def _check_group(conn: Connection, group_id: int | None) -> None:
    if group_id is not None and conn.execute(
            select(groups.c.id).where(groups.c.id == group_id)).first() is None:
        raise NotFound("group {group_id} not found", group_id=group_id)


def do_create_faq(conn: Connection, *, actor: Actor, questions: list[str], answer: str,
                  match: str = "fuzzy", pattern: str = "", group_id: int | None = None,
                  cooldown_seconds: int = 300, key: str = "") -> int:
    actor.require(Permission.OPERATE)
    _check_group(conn, group_id)
    values = _clean(questions=questions, answer=answer, match=match, pattern=pattern,
                    cooldown_seconds=cooldown_seconds)
    now = utcnow()
    faq_id = int(conn.execute(faqs.insert().values(
        group_id=group_id, key=key[:64], enabled=True, hits=0, created_by=actor.label,
        created_at=now, updated_at=now, **values).returning(faqs.c.id)).scalar_one())
    bump_version(conn)
    audit.record(conn, actor=actor.label, action="faq.create", object_type="faq",
                 object_id=faq_id, detail={"group_id": group_id, "match": match})
    return faq_id


def get_faq(conn: Connection, *, actor: Actor, faq_id: int) -> dict[str, Any]:
    actor.require(Permission.VIEW)
    row = conn.execute(select(faqs).where(faqs.c.id == faq_id)).mappings().first()
    if row is None:
        raise NotFound("FAQ {faq_id} not found", faq_id=faq_id)
    data = dict(row)
    data["question_list"] = [q for q in data["questions"].splitlines() if q]
    return data


def do_update_faq(conn: Connection, *, actor: Actor, faq_id: int,
                  changes: dict[str, Any]) -> dict[str, Any]:
    actor.require(Permission.OPERATE)
    current = get_faq(conn, actor=actor, faq_id=faq_id)
    unknown = set(changes) - {"questions", "answer", "match", "pattern", "cooldown_seconds",
                              "enabled", "group_id"}
    if unknown:
        raise InvalidInput("unknown fields: {unknown}", unknown=', '.join(sorted(unknown)))
    merged = {
        "questions": changes.get("questions", current["question_list"]),
        "answer": changes.get("answer", current["answer"]),
        "match": changes.get("match", current["match"]),
        "pattern": changes.get("pattern", current["pattern"]),
        "cooldown_seconds": int(changes.get("cooldown_seconds", current["cooldown_seconds"])),
    }
    values = _clean(**merged)
    if "enabled" in changes:
        values["enabled"] = bool(changes["enabled"])
    if "group_id" in changes:
        _check_group(conn, changes["group_id"])
        values["group_id"] = changes["group_id"]
    conn.execute(update(faqs).where(faqs.c.id == faq_id).values(updated_at=utcnow(),
                                                               **values))
    bump_version(conn)
    audit.record(conn, actor=actor.label, action="faq.update", object_type="faq",
                 object_id=faq_id, detail={"fields": sorted(changes)})
    return get_faq(conn, actor=actor, faq_id=faq_id)


def do_delete_faq(conn: Connection, *, actor: Actor, faq_id: int) -> None:
    actor.require(Permission.OPERATE)
    get_faq(conn, actor=actor, faq_id=faq_id)
    conn.execute(delete(faqs).where(faqs.c.id == faq_id))
    bump_version(conn)
    audit.record(conn, actor=actor.label, action="faq.delete", object_type="faq",
                 object_id=faq_id)


def list_faqs(conn: Connection, *, actor: Actor,
              group_id: int | None = None) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    stmt = (select(faqs, groups.c.name.label("group_name"))
            .outerjoin(groups, groups.c.id == faqs.c.group_id).order_by(faqs.c.id))
    if group_id is not None:
        stmt = stmt.where((faqs.c.group_id == group_id) | faqs.c.group_id.is_(None))
    out = []
    for row in conn.execute(stmt).mappings():
        data = dict(row)
        data["question_list"] = [q for q in data["questions"].splitlines() if q]
        out.append(data)
    return out


@dataclass(frozen=True, slots=True)
class FaqFileEntry:
    key: str
    questions: tuple[str, ...]
    answer: str
    line: int


def read_faq_csv(data: bytes, name: str) -> list[FaqFileEntry]:
    """``id,question,answer`` (UTF-8 or GB18030); rows sharing an id are more phrasings of one
    question. A missing column, an empty cell or two different answers for one id is an error
    naming the line."""
    if len(data) > MAX_FILE:
        raise InvalidInput("{name}: larger than {mb} MB",
                           name=name, mb=MAX_FILE // (1024 * 1024))
    text, _enc = decode_text(data, name)
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    missing = {"id", "question", "answer"} - set(header)
    if missing:
        raise InvalidInput("{name}:1: missing column(s) {missing} (header must be "
                           "id,question,answer)",
                           name=name, missing=', '.join(sorted(missing)))
    col = {h: header.index(h) for h in ("id", "question", "answer")}
    entries: dict[str, FaqFileEntry] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InvalidInput("{name}:{line}: {n_row} fields, the header has {n_header}",
                               name=name, line=line, n_row=len(row), n_header=len(header))
        key, question, answer = (row[col[h]].strip() for h in ("id", "question", "answer"))
        if not key or not question:
            raise InvalidInput("{name}:{line}: id and question must not be empty",
                               name=name, line=line)
        seen = entries.get(key)
        if seen is None:
            if not answer:
                raise InvalidInput("{name}:{line}: the first row of id {key!r} needs an answer",
                                   name=name, line=line, key=key)
            entries[key] = FaqFileEntry(key, (question,), answer, line)
            continue
        if answer and answer != seen.answer:
            raise InvalidInput("{name}:{line}: id {key!r} has a different answer on line {line2}",
                               name=name, line=line, key=key, line2=seen.line)
        entries[key] = FaqFileEntry(key, (*seen.questions, question), seen.answer, seen.line)
    if not entries:
        raise InvalidInput("{name}: no FAQ rows", name=name)
    return list(entries.values())


def file_entries(rows: list[FaqFileEntry]) -> list[FaqEntry]:
    return [FaqEntry(id=r.key, questions=r.questions, answer=r.answer) for r in rows]


def do_import_faqs(conn: Connection, *, actor: Actor, data: bytes, name: str,
                   group_id: int | None = None) -> dict[str, int]:
    """Import a FAQ CSV in one transaction; an id already imported is replaced."""
    actor.require(Permission.OPERATE)
    _check_group(conn, group_id)
    rows = read_faq_csv(data, name)
    created = replaced = 0
    for row in rows:
        existing = conn.execute(select(faqs.c.id).where(
            faqs.c.key == row.key, faqs.c.group_id.is_(None) if group_id is None
            else faqs.c.group_id == group_id)).scalar()
        if existing is not None:
            do_update_faq(conn, actor=actor, faq_id=int(existing),
                          changes={"questions": list(row.questions), "answer": row.answer})
            replaced += 1
        else:
            do_create_faq(conn, actor=actor, questions=list(row.questions), answer=row.answer,
                          group_id=group_id, key=row.key)
            created += 1
    return {"created": created, "replaced": replaced}
