"""Lead lists (F6): a segment ranked by a formula the operator can read, with reasons.

Each formula term is one grouped SQL query over the segment's members; the Python side only
adds the terms up and keeps, per member, what each term contributed — that is the "why" on
every row. Recency decay is ``0.5 ** (age / half-life)`` per message or event, computed in SQL.
Phone and address are masked unless the actor may see personal data; every export is audited.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, literal, select, update

from qunyun.adapters.storage.sql import epoch_seconds, in_id_list
from qunyun.adapters.storage.tables import (
    lead_lists,
    member_attributes,
    member_counts,
    member_events,
    members,
    messages,
    segments,
)
from qunyun.clock import Clock, utcnow
from qunyun.domain.segments import (
    Counter,
    Formula,
    SegmentError,
    Term,
    attribute_names,
    parse_formula,
)
from qunyun.domain.staff import Permission
from qunyun.services import attributes, audit, spreadsheets
from qunyun.services.counts import MESSAGE
from qunyun.services.errors import InvalidInput, NotFound
from qunyun.services.segment_words import term_words
from qunyun.services.segments import find_segment, member_ids, parse_for
from qunyun.services.users import Actor

MAX_EXPORT = 200_000
DEFAULT_FORMULA = "1 * messages[30d] @14d + 5 * events.joined"
DEFAULT_SEGMENT = "not blacklisted"  # the lead page opens on everyone the team may contact


@dataclass
class LeadRow:
    rank: int
    member_id: int
    number: int
    name: str
    score: float
    reasons: list[dict[str, Any]] = field(default_factory=list)
    phone: str = ""
    address: str = ""

    @property
    def why(self) -> str:
        """Each term that scored, in words: what it counts, how much, the points."""
        return "; ".join(f"{r.get('said') or r['term']}: {r['value']:g} → {r['points']:+.1f}"
                         for r in self.reasons if r["points"])

    def as_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "member_id": self.member_id, "number": self.number,
                "name": self.name, "score": round(self.score, 2), "why": self.why,
                "reasons": self.reasons, "phone": self.phone, "address": self.address}


def mask_phone(phone: str) -> str:
    """138****5678: enough to recognise, not to call."""
    if not phone:
        return ""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"


def mask_address(address: str) -> str:
    return address[:3] + "****" if address else ""


def parse_lead_formula(text: str) -> Formula:
    try:
        return parse_formula(text)
    except SegmentError as exc:
        raise InvalidInput("formula: {exc}", exc=exc) from None


def _term_values(conn: Connection, term: Term, ids: list[int],
                 clock: Clock) -> dict[int, float]:
    """member id → the term's raw value (count, decayed count, attribute or 1), for the
    segment's members ``ids`` (computed once, passed as one parameter)."""
    factor = term.factor
    if not isinstance(factor, Counter):
        stmt = member_ids(factor, clock).where(in_id_list(conn, members.c.id, ids))
        return {int(v): 1.0 for v in conn.execute(stmt).scalars()}
    if factor.field == "attr":
        stmt = select(member_attributes.c.member_id, member_attributes.c.value_num).where(
            member_attributes.c.name == factor.key, member_attributes.c.value_num.is_not(None),
            in_id_list(conn, member_attributes.c.member_id, ids))
        return {int(r[0]): float(r[1]) for r in conn.execute(stmt)}
    if factor.window is None and term.half_life is None:  # all-time counts: the totals
        kind = MESSAGE if factor.field == "messages" else factor.key
        stmt = select(member_counts.c.member_id, member_counts.c.n).where(
            member_counts.c.kind == kind, in_id_list(conn, member_counts.c.member_id, ids))
        return {int(r[0]): float(r[1]) for r in conn.execute(stmt)}
    if factor.field == "messages":
        table, at = messages, messages.c.sent_at
        where = [messages.c.direction == "in"]
    else:
        table, at = member_events, member_events.c.occurred_at
        where = [member_events.c.kind == factor.key]
    if factor.window is not None:
        where.append(at >= clock.now - factor.window)
    value: Any
    if term.half_life is not None:
        now_epoch = clock.now.timestamp()
        rate = math.log(2) / term.half_life.total_seconds()
        value = func.sum(func.exp((epoch_seconds(at) - literal(now_epoch)) * literal(rate)))
    else:
        value = func.count()
    stmt = (select(table.c.member_id, value)
            .where(in_id_list(conn, table.c.member_id, ids), *where)
            .group_by(table.c.member_id))
    return {int(m): float(v) for m, v in conn.execute(stmt)}


def score(conn: Connection, *, actor: Actor, expression: str, formula: str, clock: Clock,
          limit: int | None = 100, language: str = "zh-CN") -> tuple[list[LeadRow], int]:
    """The segment's members ranked by the formula; returns (top rows, members scored), each
    term's contribution said in ``language``."""
    actor.require(Permission.VIEW)
    node, parsed = parse_for(conn, actor, expression), parse_lead_formula(formula)
    attributes.check_personal_access(conn, actor=actor, names=attribute_names(parsed))
    totals: dict[int, float] = {int(v): 0.0
                                for v in conn.execute(member_ids(node, clock)).scalars()}
    ids = sorted(totals)
    contributions: list[tuple[Term, dict[int, float]]] = []
    for term in parsed.terms:
        values = _term_values(conn, term, ids, clock) if ids else {}
        contributions.append((term, values))
        for member_id, value in values.items():
            if member_id in totals:
                totals[member_id] += term.points * value
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    if limit is not None:
        ranked = ranked[:limit]
    if not ranked:
        return [], len(totals)
    chosen = [m for m, _ in ranked]
    info: dict[int, Any] = {}
    for start in range(0, len(chosen), 1000):
        for r in conn.execute(select(members.c.id, members.c.number, members.c.display_name,
                                     members.c.phone, members.c.address)
                              .where(members.c.id.in_(chosen[start:start + 1000]))):
            info[int(r.id)] = r
    pii = actor.can(Permission.MEMBER_PII)
    said = [term_words(term, language) for term in parsed.terms]
    rows = []
    for rank, (member_id, total) in enumerate(ranked, start=1):
        r = info[member_id]
        reasons = [{"term": term.label, "said": said[i],
                    "value": round(values.get(member_id, 0.0), 3),
                    "points": round(term.points * values.get(member_id, 0.0), 3)}
                   for i, (term, values) in enumerate(contributions)]
        rows.append(LeadRow(rank=rank, member_id=member_id, number=int(r.number),
                            name=r.display_name, score=total, reasons=reasons,
                            phone=r.phone if pii else mask_phone(r.phone),
                            address=r.address if pii else mask_address(r.address)))
    return rows, len(totals)


EXPORT_COLUMNS = ("rank", "number", "name", "score", "why", "phone", "address")
HEADERS_ZH = ("排名", "会员编号", "昵称", "得分", "得分原因", "手机", "地址")


def render_export(rows: list[LeadRow], fmt: str, language: str = "zh-CN") -> bytes:
    header = HEADERS_ZH if language == "zh-CN" else EXPORT_COLUMNS
    table = [[getattr(r, c) if c != "score" else round(r.score, 2) for c in EXPORT_COLUMNS]
             for r in rows]
    if fmt == "csv":
        return spreadsheets.csv_bytes(header, table)
    if fmt == "xlsx":
        return spreadsheets.xlsx_bytes("leads", header, table, widths={4: 60})
    raise InvalidInput("format: csv or xlsx")


def do_export_leads(conn: Connection, *, actor: Actor, expression: str, formula: str,
                    clock: Clock, fmt: str, language: str = "zh-CN",
                    source: str = "") -> tuple[bytes, int]:
    """Rank the whole segment and render it; the export itself is audited (who, what, how
    many rows, masked or not)."""
    actor.require(Permission.VIEW)
    if fmt not in ("csv", "xlsx"):
        raise InvalidInput("format: csv or xlsx")
    rows, total = score(conn, actor=actor, expression=expression, formula=formula,
                        clock=clock, limit=MAX_EXPORT, language=language)
    body = render_export(rows, fmt, language)
    audit.record(conn, actor=actor.label, action="leads.export", object_type="lead_list",
                 object_id=source[:64], detail={
                     "segment": expression, "formula": formula, "format": fmt,
                     "rows": len(rows), "members": total,
                     "pii": actor.can(Permission.MEMBER_PII)})
    return body, len(rows)


# ---- saved lead lists --------------------------------------------------------------------

def do_save_lead_list(conn: Connection, *, actor: Actor, name: str, segment: str,
                      formula: str) -> int:
    """Save (or replace the formula of) a named lead list over a saved segment."""
    actor.require(Permission.OPERATE)
    name = name.strip()
    if not name or len(name) > 128:
        raise InvalidInput("name: 1–128 characters")
    seg = find_segment(conn, actor=actor, ref=segment)
    parse_lead_formula(formula)
    now = utcnow()
    existing = conn.execute(select(lead_lists.c.id).where(lead_lists.c.name == name)).scalar()
    if existing is not None:
        conn.execute(update(lead_lists).where(lead_lists.c.id == existing).values(
            segment_id=seg["id"], formula=formula, updated_at=now))
        list_id = int(existing)
    else:
        list_id = int(conn.execute(lead_lists.insert().values(
            name=name, segment_id=seg["id"], formula=formula, created_by=actor.label,
            created_at=now, updated_at=now).returning(lead_lists.c.id)).scalar_one())
    audit.record(conn, actor=actor.label, action="leads.save", object_type="lead_list",
                 object_id=list_id, detail={"name": name, "segment": seg["name"],
                                            "formula": formula})
    return list_id


def list_lead_lists(conn: Connection, *, actor: Actor) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    stmt = (select(lead_lists, segments.c.name.label("segment_name"),
                   segments.c.expression)
            .join(segments, segments.c.id == lead_lists.c.segment_id)
            .order_by(lead_lists.c.name))
    return [dict(r) for r in conn.execute(stmt).mappings()]


def find_lead_list(conn: Connection, *, actor: Actor, ref: str) -> dict[str, Any]:
    for row in list_lead_lists(conn, actor=actor):
        if str(row["id"]) == ref or row["name"] == ref:
            return row
    raise NotFound("lead list {ref!r} not found", ref=ref)

