"""Custom attributes: join a spreadsheet onto members (error rate, spend, city, phone…).

The key column is found by its header (member number, union id, wxid or phone, in Chinese or
English) or named with ``key``. Other columns become attributes — text always, a number too
when the cell reads as one ("30%" is 0.3, "1,200" is 1200) — except phone and address, which
fill the member's masked personal fields. Rows whose key matches nobody are reported with
their line, never guessed. The whole file is one transaction: a broken file changes nothing.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, update

from qunyun.adapters.storage.sql import upsert_many
from qunyun.adapters.storage.tables import identities, member_attributes, members, utcnow
from qunyun.domain.staff import Permission
from qunyun.services import audit
from qunyun.services.errors import InvalidInput, NotFound
from qunyun.services.members import UNIONID_KINDS, WXID_KINDS
from qunyun.services.users import Actor

KEY_HEADERS: dict[str, tuple[str, ...]] = {
    "number": ("member_number", "number", "会员编号", "编号", "member no", "学号", "会员号"),
    "unionid": ("unionid", "union_id", "union id"),
    "wxid": ("wxid", "微信id", "wechat id"),
    "phone": ("phone", "mobile", "手机", "手机号", "电话"),
}
PII_HEADERS: dict[str, tuple[str, ...]] = {
    "phone": KEY_HEADERS["phone"],
    "address": ("address", "地址", "收货地址"),
}
MAX_NAME = 64
MAX_BYTES = 50 * 1024 * 1024
_NUMBER = re.compile(r"^[-+]?[¥$]?\d[\d,]*(\.\d+)?%?$|^[-+]?[¥$]?\.\d+%?$")


@dataclass
class AttributeReport:
    file: str
    encoding: str
    key: str
    key_column: str
    rows: int = 0
    matched: int = 0
    attributes_set: int = 0
    columns: list[str] = field(default_factory=list)
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    ambiguous: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "encoding": self.encoding, "key": self.key,
                "key_column": self.key_column, "rows": self.rows, "matched": self.matched,
                "unmatched_count": len(self.unmatched), "attributes_set": self.attributes_set,
                "columns": self.columns, "unmatched": self.unmatched,
                "ambiguous": self.ambiguous}


def parse_number(text: str) -> float | None:
    """The number a spreadsheet cell means, or None: '30%' → 0.3, '¥1,200' → 1200."""
    cleaned = text.strip().replace(" ", "")
    if not cleaned or not _NUMBER.match(cleaned):
        return None
    percent = cleaned.endswith("%")
    value = float(cleaned.rstrip("%").replace(",", "").replace("¥", "").replace("$", ""))
    return value / 100 if percent else value


def normalise_phone(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


def decode_text(raw: bytes, name: str) -> tuple[str, str]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise InvalidInput(f"{name}: neither UTF-8 nor GB18030 text")  # pragma: no cover


@dataclass
class CsvTable:
    """A decoded CSV: its header and its non-blank data rows with their line numbers."""

    name: str
    encoding: str
    header: list[str]
    rows: list[tuple[int, list[str]]]


def read_csv_table(path: Path | str, data: bytes | None = None) -> CsvTable:
    """Read a spreadsheet export (UTF-8 or GB18030, as Excel and form tools write them);
    errors name the file and line. ``data`` when it came over HTTP, else read ``path``."""
    name = str(path)
    if data is None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InvalidInput(f"{name}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise InvalidInput(f"{name}: larger than {MAX_BYTES // 1024 // 1024} MB")
    text, encoding = decode_text(data, name)
    try:
        raw = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise InvalidInput(f"{name}: not a CSV file ({exc})") from None
    if not raw or not any(c.strip() for c in raw[0]):
        raise InvalidInput(f"{name}: line 1: empty file, expected a header row")
    header = [h.strip() for h in raw[0]]
    if len(set(header)) != len(header):
        raise InvalidInput(f"{name}: line 1: repeated column names")
    rows = []
    for line, row in enumerate(raw[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise InvalidInput(f"{name}: line {line}: {len(row)} cells, header has "
                               f"{len(header)}")
        rows.append((line, row))
    return CsvTable(name=name, encoding=encoding, header=header, rows=rows)


def header_kind(header: str, table: dict[str, tuple[str, ...]]) -> str | None:
    low = header.strip().lower()
    return next((kind for kind, names in table.items() if low in names), None)


def lookup_members(conn: Connection, key: str, value: str) -> list[int]:
    live = members.c.merged_into_id.is_(None)
    if key == "number":
        if not value.isdigit():
            return []
        stmt = select(members.c.id).where(members.c.number == int(value), live)
    elif key == "phone":
        stmt = select(members.c.id).where(members.c.phone == normalise_phone(value), live)
    else:
        kinds = UNIONID_KINDS if key == "unionid" else WXID_KINDS
        stmt = (select(members.c.id).distinct()
                .join(identities, identities.c.member_id == members.c.id)
                .where(identities.c.kind.in_(kinds), identities.c.external_id == value, live))
    return [int(v) for v in conn.execute(stmt).scalars()]


def do_import_attributes(conn: Connection, *, actor: Actor, path: Path | str,
                         data: bytes | None = None, key: str | None = None) -> AttributeReport:
    """Import one CSV (``data`` when it came over HTTP, else read from ``path``)."""
    actor.require(Permission.OPERATE)
    table = read_csv_table(path, data)
    name, encoding, rows = table.name, table.encoding, table.rows
    header = table.header
    if key is not None:
        if key not in header:
            raise InvalidInput(f"{name}: line 1: no column {key!r}; columns: {', '.join(header)}")
        key_index = header.index(key)
        key_kind = header_kind(key, KEY_HEADERS)
        if key_kind is None:
            raise InvalidInput(f"key: {key!r} is not a member number, union id, wxid or phone "
                               "column")
    else:
        found = [(i, k) for i, h in enumerate(header) if (k := header_kind(h, KEY_HEADERS))]
        if not found:
            raise InvalidInput(f"{name}: line 1: no key column; name one of member_number / "
                               "会员编号, unionid, wxid, phone / 手机号")
        key_index, key_kind = found[0]
    columns: list[tuple[int, str, str]] = []  # (index, attribute or pii field, kind)
    for i, h in enumerate(header):
        if i == key_index or not h:
            continue
        pii = header_kind(h, PII_HEADERS)
        if pii:
            columns.append((i, pii, "pii"))
        elif len(h) > MAX_NAME:
            raise InvalidInput(f"{name}: line 1: column name longer than {MAX_NAME}: {h[:20]}…")
        else:
            columns.append((i, h, "attr"))
    report = AttributeReport(file=name, encoding=encoding, key=key_kind,
                             key_column=header[key_index], columns=[c[1] for c in columns])
    now = utcnow()
    batch: list[dict[str, Any]] = []
    for line, row in rows:
        report.rows += 1
        value = row[key_index].strip() if key_index < len(row) else ""
        matches = lookup_members(conn, key_kind, value) if value else []
        if len(matches) != 1:
            target = report.ambiguous if matches else report.unmatched
            target.append({"line": line, "key": value, "members": len(matches)})
            continue
        member_id = matches[0]
        report.matched += 1
        personal: dict[str, str] = {}
        for index, column, kind in columns:
            cell = row[index].strip() if index < len(row) else ""
            if not cell:
                continue
            if kind == "pii":
                personal[column] = normalise_phone(cell) if column == "phone" else cell
                continue
            batch.append({"member_id": member_id, "name": column, "value_text": cell,
                          "value_num": parse_number(cell), "updated_at": now,
                          "source": Path(name).name[:128]})
        if personal:
            conn.execute(update(members).where(members.c.id == member_id).values(**personal))
            report.attributes_set += len(personal)
    for start in range(0, len(batch), 1000):
        upsert_many(conn, member_attributes, batch[start:start + 1000], ["member_id", "name"],
                    ["value_text", "value_num", "updated_at", "source"])
    report.attributes_set += len(batch)
    audit.record(conn, actor=actor.label, action="members.import_attributes",
                 object_type="file", object_id=Path(name).name[:64], detail={
                     "rows": report.rows, "matched": report.matched,
                     "unmatched": len(report.unmatched), "columns": report.columns})
    return report


def do_set_attribute(conn: Connection, *, actor: Actor, member_id: int, name: str,
                     value: str) -> None:
    """Set (or, with an empty value, clear) one attribute by hand."""
    actor.require(Permission.OPERATE)
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidInput(f"name: 1–{MAX_NAME} characters")
    if conn.execute(select(members.c.id).where(members.c.id == member_id)).first() is None:
        raise NotFound(f"member {member_id} not found")
    if value.strip():
        upsert_many(conn, member_attributes, [{
            "member_id": member_id, "name": name, "value_text": value.strip(),
            "value_num": parse_number(value), "updated_at": utcnow(), "source": actor.label}],
            ["member_id", "name"], ["value_text", "value_num", "updated_at", "source"])
    else:
        conn.execute(member_attributes.delete().where(member_attributes.c.member_id == member_id,
                                                      member_attributes.c.name == name))
    audit.record(conn, actor=actor.label, action="member.attribute", object_type="member",
                 object_id=member_id, detail={"name": name, "value": value.strip()})


def member_attribute_list(conn: Connection, member_id: int) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(
        select(member_attributes).where(member_attributes.c.member_id == member_id)
        .order_by(member_attributes.c.name)).mappings()]


def attribute_names(conn: Connection) -> list[str]:
    return list(conn.execute(select(member_attributes.c.name).distinct()
                             .order_by(member_attributes.c.name)).scalars())
