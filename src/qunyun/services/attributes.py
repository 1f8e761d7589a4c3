"""Custom attributes: join a spreadsheet onto members (error rate, spend, city, phone…).

The key column is found by its header (member number, union id, wxid or phone, in Chinese or
English) or named with ``key``. Other columns become attributes — text always, a number too
when the cell reads as one ("30%" is 0.3, "1,200" is 1200) — except phone and address, which
fill the member's masked personal fields. Rows whose key matches nobody are reported with
their line, never guessed. The whole file is one transaction: a broken file changes nothing.

Attributes are personal data unless an admin marks one otherwise (``attribute_fields``):
spreadsheets carry 姓名, 身份证号, 家庭住址 as readily as 错题率. For staff without
personal-data access a personal attribute's value is masked wherever it is shown, and it
cannot be used in a segment condition or a lead formula — a count over ``attr.身份证号 ~ "…"``
(or a range over its number) recovers it digit by digit. The kind found from the column's
name (ID number, name, email…) decides how a value is masked.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select, update

from qunyun.adapters.storage.sql import insert_ignore_many, upsert_many
from qunyun.adapters.storage.tables import (
    attribute_fields,
    identities,
    member_attributes,
    members,
)
from qunyun.clock import utcnow
from qunyun.domain.staff import Permission
from qunyun.services import audit
from qunyun.services.errors import AccessDenied, InvalidInput, NotFound
from qunyun.services.members import UNIONID_KINDS, WXID_KINDS
from qunyun.services.users import Actor

KEY_HEADERS: dict[str, tuple[str, ...]] = {
    "number": ("member_number", "number", "会员编号", "编号", "member no", "学号", "会员号"),
    "unionid": ("unionid", "union_id", "union id"),
    "wxid": ("wxid", "微信id", "wechat id"),
    "phone": ("phone", "mobile", "手机", "手机号", "电话"),
}
PII_HEADERS: dict[str, tuple[str, ...]] = {
    "phone": (*KEY_HEADERS["phone"], "联系电话", "手机号码", "联系方式", "电话号码",
              "mobile phone", "telephone", "tel"),
    "address": ("address", "地址", "收货地址", "家庭住址", "住址", "家庭地址", "通讯地址",
                "详细地址", "home address"),
}
# Words in a column's name that say what personal data it holds (how to mask it).
PERSONAL_WORDS: dict[str, tuple[str, ...]] = {
    "id_number": ("身份证", "证件", "id card", "id number", "id_number", "passport", "护照"),
    "name": ("姓名", "名字", "full name", "real name", "realname"),
    "email": ("邮箱", "email", "e-mail", "mail"),
    "account": ("微信号", "qq", "wechat", "银行卡", "卡号", "account"),
    "birthday": ("生日", "出生", "birthday", "birth"),
    "contact": ("电话", "手机", "地址", "住址", "phone", "address"),
}
MASK = "●●●"
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
    raise InvalidInput("{name}: neither UTF-8 nor GB18030 text", name=name)  # pragma: no cover


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
            raise InvalidInput("{name}: {value}", name=name, value=exc.strerror or exc) from None
    if len(data) > MAX_BYTES:
        raise InvalidInput("{name}: larger than {mb} MB",
                           name=name, mb=MAX_BYTES // 1024 // 1024)
    text, encoding = decode_text(data, name)
    try:
        raw = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise InvalidInput("{name}: not a CSV file ({exc})", name=name, exc=exc) from None
    if not raw or not any(c.strip() for c in raw[0]):
        raise InvalidInput("{name}: line 1: empty file, expected a header row", name=name)
    header = [h.strip() for h in raw[0]]
    if len(set(header)) != len(header):
        raise InvalidInput("{name}: line 1: repeated column names", name=name)
    rows = []
    for line, row in enumerate(raw[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise InvalidInput("{name}: line {line}: {n_row} cells, header has {n_header}",
                               name=name, line=line, n_row=len(row), n_header=len(header))
        rows.append((line, row))
    return CsvTable(name=name, encoding=encoding, header=header, rows=rows)


def personal_kind(name: str) -> str:
    """What personal data a column or attribute name suggests ("" when nothing)."""
    low = name.strip().lower()
    return next((kind for kind, words in PERSONAL_WORDS.items()
                 if any(word in low for word in words)), "")


def mask_value(value: str, kind: str) -> str:
    """A personal value as staff without personal-data access see it: enough to tell two
    apart in a list, not enough to use."""
    value = value.strip()
    if not value:
        return ""
    if kind == "id_number" and len(value) >= 8:
        return value[:3] + "*" * (len(value) - 7) + value[-4:]
    if kind == "name":
        return value[0] + "*" * min(len(value) - 1, 3) if len(value) > 1 else "*"
    if kind == "email" and "@" in value:
        user, _, domain = value.partition("@")
        return user[:1] + "***@" + domain
    if kind == "contact" and len(value) >= 8:
        return value[:3] + "****" + value[-4:]
    return MASK


@dataclass(frozen=True, slots=True)
class FieldInfo:
    personal: bool
    kind: str


def field_info(conn: Connection) -> dict[str, FieldInfo]:
    """Every listed attribute name → personal or not, and its kind (guessed from the name
    when none was stored). A name not listed is personal."""
    return {r.name: FieldInfo(bool(r.personal), r.kind or personal_kind(r.name))
            for r in conn.execute(select(attribute_fields))}


def is_personal(fields: dict[str, FieldInfo], name: str) -> bool:
    info = fields.get(name)
    return info is None or info.personal


def _register(conn: Connection, names: Iterable[str], source: str) -> None:
    """List new attribute names as personal (an admin's decision on a listed one stands)."""
    rows = [{"name": n, "personal": True, "kind": personal_kind(n), "updated_by": source,
             "updated_at": utcnow()} for n in sorted(set(names))]
    if rows:
        insert_ignore_many(conn, attribute_fields, rows, ("name",))


def check_personal_access(conn: Connection, *, actor: Actor, names: Iterable[str]) -> None:
    """Refuse conditions and formula terms on personal attributes to staff who may not see
    personal data: their counts and rankings would reveal the values."""
    if actor.can(Permission.MEMBER_PII):
        return
    wanted = sorted(set(names))
    if not wanted:
        return
    fields = field_info(conn)
    refused = [n for n in wanted if is_personal(fields, n)]
    if refused:
        raise AccessDenied(
            "attr.{refused}: a personal attribute; only staff who may see personal data can "
            "filter or rank on it (an admin can mark it as not personal)", refused=refused[0])


def list_attribute_fields(conn: Connection, *, actor: Actor) -> list[dict[str, Any]]:
    """Every attribute name in use or listed: personal or not, its kind, members holding it."""
    actor.require(Permission.VIEW)
    counts: dict[str, int] = dict(conn.execute(select(member_attributes.c.name, func.count())
                               .group_by(member_attributes.c.name)).all())
    fields = field_info(conn)
    rows = []
    for name in sorted(set(counts) | set(fields)):
        info = fields.get(name, FieldInfo(True, personal_kind(name)))
        rows.append({"name": name, "personal": info.personal, "kind": info.kind,
                     "members": int(counts.get(name, 0))})
    return rows


def do_mark_attribute(conn: Connection, *, actor: Actor, name: str,
                      personal: bool) -> dict[str, Any]:
    """An admin decides whether an attribute is personal data (viewers then see it, filter
    and rank on it when it is not)."""
    actor.require(Permission.MANAGE_USERS)
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidInput("name: 1–{limit} characters", limit=MAX_NAME)
    known = conn.execute(select(member_attributes.c.name).where(
        member_attributes.c.name == name).limit(1)).first()
    listed = conn.execute(select(attribute_fields.c.name).where(
        attribute_fields.c.name == name)).first()
    if known is None and listed is None:
        raise NotFound("no attribute {name!r}", name=name)
    values = {"personal": personal, "updated_by": actor.label[:128], "updated_at": utcnow()}
    if listed is None:
        conn.execute(attribute_fields.insert().values(name=name, kind=personal_kind(name),
                                                      **values))
    else:
        conn.execute(update(attribute_fields).where(attribute_fields.c.name == name)
                     .values(**values))
    audit.record(conn, actor=actor.label, action="attribute.mark", object_type="attribute",
                 object_id=name, detail={"personal": personal})
    return next(f for f in list_attribute_fields(conn, actor=actor) if f["name"] == name)


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
            raise InvalidInput("{name}: line 1: no column {key!r}; columns: {header}",
                               name=name, key=key, header=', '.join(header))
        key_index = header.index(key)
        key_kind = header_kind(key, KEY_HEADERS)
        if key_kind is None:
            raise InvalidInput("key: {key!r} is not a member number, union id, wxid or phone "
                               "column",
                               key=key)
    else:
        found = [(i, k) for i, h in enumerate(header) if (k := header_kind(h, KEY_HEADERS))]
        if not found:
            raise InvalidInput("{name}: line 1: no key column; name one of member_number / "
                               "会员编号, unionid, wxid, phone / 手机号",
                               name=name)
        key_index, key_kind = found[0]
    columns: list[tuple[int, str, str]] = []  # (index, attribute or pii field, kind)
    for i, h in enumerate(header):
        if i == key_index or not h:
            continue
        pii = header_kind(h, PII_HEADERS)
        if pii:
            columns.append((i, pii, "pii"))
        elif len(h) > MAX_NAME:
            raise InvalidInput("{name}: line 1: column name longer than {limit}: {h}…",
                               name=name, limit=MAX_NAME, h=h[:20])
        else:
            columns.append((i, h, "attr"))
    report = AttributeReport(file=name, encoding=encoding, key=key_kind,
                             key_column=header[key_index], columns=[c[1] for c in columns])
    _register(conn, (c[1] for c in columns if c[2] == "attr"), actor.label[:128])
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
        raise InvalidInput("name: 1–{limit} characters", limit=MAX_NAME)
    if conn.execute(select(members.c.id).where(members.c.id == member_id)).first() is None:
        raise NotFound("member {member_id} not found", member_id=member_id)
    if value.strip():
        _register(conn, [name], actor.label[:128])
        upsert_many(conn, member_attributes, [{
            "member_id": member_id, "name": name, "value_text": value.strip(),
            "value_num": parse_number(value), "updated_at": utcnow(), "source": actor.label}],
            ["member_id", "name"], ["value_text", "value_num", "updated_at", "source"])
    else:
        conn.execute(member_attributes.delete().where(member_attributes.c.member_id == member_id,
                                                      member_attributes.c.name == name))
    audit.record(conn, actor=actor.label, action="member.attribute", object_type="member",
                 object_id=member_id, detail={"name": name, "value": value.strip()})


def member_attribute_list(conn: Connection, member_id: int, *,
                          actor: Actor) -> list[dict[str, Any]]:
    """A member's attributes; personal ones masked for staff without personal-data access."""
    fields = field_info(conn)
    clear = actor.can(Permission.MEMBER_PII)
    out = []
    for r in conn.execute(select(member_attributes).where(
            member_attributes.c.member_id == member_id).order_by(member_attributes.c.name)
            ).mappings():
        row = dict(r)
        row["personal"] = is_personal(fields, row["name"])
        if row["personal"] and not clear:
            info = fields.get(row["name"])
            kind = info.kind if info else personal_kind(row["name"])
            row.update(value_text=mask_value(row["value_text"], kind), value_num=None,
                       masked=True)
        else:
            row["masked"] = False
        out.append(row)
    return out


def attribute_names(conn: Connection) -> list[str]:
    return list(conn.execute(select(member_attributes.c.name).distinct()
                             .order_by(member_attributes.c.name)).scalars())
