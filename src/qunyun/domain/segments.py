"""The segment language (F5) and the lead-scoring formula (F6): text operators can read.

A segment is conditions combined with ``and`` / ``or`` / ``not`` (also ``且`` / ``或`` / ``非``)
and parentheses::

    series = "奥数" and attr.错题率 > 30% and series = "阅读"
    tag = "问过价格" and not blacklisted and messages[30d] >= 5

A lead formula adds up weighted behaviours; ``@14d`` is a half-life (recency decay)::

    1 * messages @14d + 5 * events.checkin @30d + 20 * (tag = "问过价格") + 0.01 * attr.spend

Parsing is pure (lark, LALR); services compile the tree to SQL. Errors name the column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, Literal

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedInput, VisitError

from qunyun.domain.storable import text_problem
from qunyun.i18n import N_, InvalidValue

GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: _NOT not_expr -> negation
         | "(" or_expr ")"
         | FIELD WINDOW? OP value -> condition
         | FIELD -> flag

formula: term ("+" term)*
term: NUMBER "*" factor HALFLIFE?
?factor: FIELD WINDOW? -> counter
       | "(" or_expr ")"

?value: STRING -> text
      | DATE -> day
      | RELATIVE -> relative
      | NUMBER -> number
      | WORD -> text

_OR.3: /(or\b|或)/i
_AND.3: /(and\b|且|并且)/i
_NOT.3: /(not\b|非)/i
OP: ">=" | "<=" | "!=" | "=" | ">" | "<" | "~"
WINDOW: /\[\s*\d+\s*[dhw]\s*\]/
HALFLIFE: /@\s*\d+(\.\d+)?\s*[dhw]/
FIELD.2: /[A-Za-z_][A-Za-z0-9_]*(\.[^\s()\[\]=<>!~"“”'@*+]+)?/
STRING.2: /"[^"]*"|“[^”]*”|'[^']*'/
DATE.2: /\d{4}-\d{1,2}-\d{1,2}/
RELATIVE.2: /-\d+[dhw]/
NUMBER.1: /-?\d+(\.\d+)?%?/
WORD.0: /[^\s()\[\]"“”'=<>!~+*@]+/
%ignore /\s+/
"""

Op = Literal["=", "!=", ">", ">=", "<", "<=", "~"]
Value = str | float | date | timedelta | None


class SegmentError(InvalidValue):
    """A segment or formula that cannot be parsed or checked; ``column`` is 1-based."""

    def __init__(self, message: str, /, column: int = 0, **values: Any) -> None:
        if column:
            super().__init__(N_("column {column}: {problem}"), column=column,
                             problem=InvalidValue(message, **values))
        else:
            super().__init__(message, **values)
        self.column = column


@dataclass(frozen=True, slots=True)
class Condition:
    field: str  # "tag", "events", "attr", ...
    key: str  # the part after the dot: an event kind or attribute name ("" when none)
    op: Op | None  # None for flags such as ``blacklisted``
    value: Value
    window: timedelta | None = None  # messages[30d]: only the last 30 days count
    column: int = 0

    @property
    def label(self) -> str:
        name = f"{self.field}.{self.key}" if self.key else self.field
        if self.window is not None:
            name += f"[{_duration_text(self.window)}]"
        if self.op is None:
            return name
        value = self.value
        shown = (f'"{value}"' if isinstance(value, str) else
                 "-" + _duration_text(value) if isinstance(value, timedelta) else
                 f"{value:g}" if isinstance(value, float) else str(value))
        return f"{name} {self.op} {shown}"


@dataclass(frozen=True, slots=True)
class Not:
    inner: Node


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Node, ...]


Node = Condition | Not | AllOf | AnyOf


@dataclass(frozen=True, slots=True)
class Counter:
    """A number per member: ``messages``, ``events.<kind>`` (optionally windowed) or
    ``attr.<name>`` (the attribute's numeric value)."""

    field: str
    key: str
    window: timedelta | None = None

    @property
    def label(self) -> str:
        name = f"{self.field}.{self.key}" if self.key else self.field
        return name + (f"[{_duration_text(self.window)}]" if self.window else "")


@dataclass(frozen=True, slots=True)
class Term:
    points: float
    factor: Counter | Node  # a Node counts 1 when the member matches it
    half_life: timedelta | None = None

    @property
    def label(self) -> str:
        factor = self.factor
        inner = factor.label if isinstance(factor, Counter) else f"({describe(factor)})"
        decay = f" @{_duration_text(self.half_life)}" if self.half_life else ""
        return f"{self.points:g} * {inner}{decay}"


@dataclass(frozen=True, slots=True)
class Formula:
    terms: tuple[Term, ...]


def attribute_names(item: Node | Formula) -> set[str]:
    """The custom attributes a segment or lead formula reads (``attr.<name>``)."""
    if isinstance(item, Formula):
        names: set[str] = set()
        for term in item.terms:
            factor = term.factor
            if isinstance(factor, Counter):
                if factor.field == "attr":
                    names.add(factor.key)
            else:
                names |= attribute_names(factor)
        return names
    if isinstance(item, Condition):
        return {item.key} if item.field == "attr" else set()
    if isinstance(item, Not):
        return attribute_names(item.inner)
    return set().union(*(attribute_names(p) for p in item.parts))


# What each field accepts: value kinds, operators, whether a [window] is allowed.
_TEXT_OPS = frozenset({"=", "!=", "~"})
_CMP_OPS = frozenset({"=", "!=", ">", ">=", "<", "<="})


@dataclass(frozen=True, slots=True)
class FieldSpec:
    values: frozenset[str]  # "text", "number", "date"
    ops: frozenset[str]
    keyed: bool = False  # needs .key (events.checkin, attr.spend)
    window: bool = False
    flag: bool = False
    counter: bool = False  # usable as a formula factor
    help_zh: str = ""
    help_en: str = ""


FIELDS: dict[str, FieldSpec] = {
    "tag": FieldSpec(frozenset({"text"}), _TEXT_OPS,
                     help_zh='有标签(可写 "组/标签")', help_en='has tag ("group/tag" allowed)'),
    "group": FieldSpec(frozenset({"text"}), _TEXT_OPS,
                       help_zh="曾在此群(群名)", help_en="was ever in the group (by name)"),
    "current_group": FieldSpec(frozenset({"text"}), _TEXT_OPS,
                               help_zh="当前在此群", help_en="is in the group now"),
    "series": FieldSpec(frozenset({"text"}), _TEXT_OPS,
                        help_zh="曾在此系列的群", help_en="was in a group of this series"),
    "channel": FieldSpec(frozenset({"text"}), _TEXT_OPS,
                         help_zh="入群渠道", help_en="joined through this channel"),
    "joined": FieldSpec(frozenset({"date"}), _CMP_OPS,
                        help_zh="入群时间(任一群)", help_en="joined any group at"),
    "first_seen": FieldSpec(frozenset({"date"}), _CMP_OPS,
                            help_zh="首次出现", help_en="first seen at"),
    "last_seen": FieldSpec(frozenset({"date"}), _CMP_OPS,
                           help_zh="最后出现", help_en="last seen at"),
    "messages": FieldSpec(frozenset({"number"}), _CMP_OPS, window=True, counter=True,
                          help_zh="发言条数,可加 [30d]", help_en="messages sent, [30d] window"),
    "events": FieldSpec(frozenset({"number"}), _CMP_OPS, keyed=True, window=True, counter=True,
                        help_zh="事件次数,如 events.checkin",
                        help_en="event count, e.g. events.checkin"),
    "attr": FieldSpec(frozenset({"number", "text"}), _CMP_OPS | _TEXT_OPS, keyed=True,
                      counter=True, help_zh="自定义字段,如 attr.spend",
                      help_en="custom attribute, e.g. attr.spend"),
    "said": FieldSpec(frozenset({"text"}), frozenset({"~"}), window=True,
                      help_zh="发言包含", help_en="said something containing"),
    "number": FieldSpec(frozenset({"number"}), _CMP_OPS,
                        help_zh="会员编号", help_en="member number"),
    "blacklisted": FieldSpec(frozenset(), frozenset(), flag=True,
                             help_zh="在黑名单中", help_en="is blacklisted"),
    "has_phone": FieldSpec(frozenset(), frozenset(), flag=True,
                           help_zh="有手机号", help_en="has a phone number"),
}


MAX_DAYS = 36_600  # a window or a relative date reaches back at most a century
MAX_NUMBER = 1e18  # within a 64-bit column (member numbers, counts) on both databases
MIN_DAY, MAX_DAY = date(1900, 1, 1), date(2999, 12, 31)


def _duration(text: str) -> timedelta:
    digits = text.strip("[]@- \t")
    unit = digits[-1].lower()
    amount = float(digits[:-1].strip())
    days = amount * {"d": 1.0, "h": 1 / 24, "w": 7.0}[unit]
    if days > MAX_DAYS:
        raise SegmentError("{digits}: at most {limit:,} days (100 years)",
                           digits=digits, limit=MAX_DAYS)
    return timedelta(days=days)


def _duration_text(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds % 604800 == 0:
        return f"{seconds // 604800}w"
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    return f"{seconds // 3600}h"


def _field(token: Token) -> tuple[str, str, FieldSpec, int]:
    raw = str(token)
    name, _, key = raw.partition(".")
    spec = FIELDS.get(name)
    column = token.column or 0
    if spec is None:
        raise SegmentError("unknown field {name!r}; fields: {fields}",
                           column=column, name=name, fields=', '.join(FIELDS))
    if spec.keyed and not key:
        raise SegmentError("{name} needs a name after the dot, e.g. {name}.checkin",
                           column=column, name=name)
    if key and not spec.keyed:
        raise SegmentError("{name} takes no '.{key}'", column=column, name=name, key=key)
    return name, key, spec, column


class _Build(Transformer[Token, object]):
    @v_args(inline=True)
    def text(self, token: Token) -> str:
        raw = str(token)
        value = raw[1:-1] if raw[:1] in "\"“'" else raw
        problem = text_problem(value)
        if problem:
            raise SegmentError("the text {problem}", column=token.column or 0, problem=problem)
        return value

    @v_args(inline=True)
    def number(self, token: Token) -> float:
        raw = str(token)
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
        if not abs(value) <= MAX_NUMBER:
            raise SegmentError("{raw}: beyond ±{limit:.0e}",
                               column=token.column or 0, raw=raw, limit=MAX_NUMBER)
        return value

    @v_args(inline=True)
    def day(self, token: Token) -> date:
        try:
            year, month, dd = (int(p) for p in str(token).split("-"))
            day = date(year, month, dd)
        except ValueError:
            raise SegmentError("not a date: {token}",
                               column=token.column or 0, token=token) from None
        if not MIN_DAY <= day <= MAX_DAY:
            raise SegmentError("{token}: a date between {first} and {last}",
                               column=token.column or 0, token=token, first=MIN_DAY,
                               last=MAX_DAY)
        return day

    @v_args(inline=True)
    def relative(self, token: Token) -> timedelta:
        return _duration(str(token))

    def condition(self, items: list[object]) -> Condition:
        field_token = items[0]
        assert isinstance(field_token, Token)
        name, key, spec, column = _field(field_token)
        window = None
        rest = items[1:]
        if isinstance(rest[0], Token) and rest[0].type == "WINDOW":
            if not spec.window:
                raise SegmentError("{name} takes no [window]", column=column, name=name)
            window = _duration(str(rest[0]))
            rest = rest[1:]
        op_token, value = rest
        op = str(op_token)
        if spec.flag:
            raise SegmentError("{name} is a flag: write it alone (or 'not {name}')",
                               column=column, name=name)
        if op not in spec.ops:
            raise SegmentError("{name} does not take '{op}'; use {ops}",
                               column=column, name=name, op=op, ops=" ".join(sorted(spec.ops)))
        kind = ("number" if isinstance(value, float) else
                "date" if isinstance(value, date | timedelta) else "text")
        if kind not in spec.values:
            wanted = " or ".join(sorted(spec.values))
            raise SegmentError("{name} compares with a {wanted}, not {value!r}",
                               column=column, name=name, wanted=wanted, value=value)
        if kind == "text" and op not in _TEXT_OPS:
            raise SegmentError("'{op}' needs a number, not {value!r}",
                               column=column, op=op, value=value)
        return Condition(name, key, op, value, window, column)  # type: ignore[arg-type]

    @v_args(inline=True)
    def flag(self, token: Token) -> Condition:
        name, key, spec, column = _field(token)
        if not spec.flag:
            raise SegmentError("{name} needs a comparison, e.g. {name} = …",
                               column=column, name=name)
        return Condition(name, key, None, None, None, column)

    @v_args(inline=True)
    def negation(self, inner: Node) -> Node:
        return Not(inner)

    def and_expr(self, parts: list[Node]) -> Node:
        return AllOf(tuple(parts))

    def or_expr(self, parts: list[Node]) -> Node:
        return AnyOf(tuple(parts))

    def counter(self, items: list[Token]) -> Counter:
        name, key, spec, column = _field(items[0])
        if not spec.counter:
            raise SegmentError("{name} is not a number; wrap a condition in ( )",
                               column=column, name=name)
        window = _duration(str(items[1])) if len(items) > 1 else None
        if window is not None and not spec.window:
            raise SegmentError("{name} takes no [window]", column=column, name=name)
        return Counter(name, key, window)

    def term(self, items: list[object]) -> Term:
        points_token, factor = items[0], items[1]
        assert isinstance(points_token, Token)
        raw = str(points_token)
        points = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
        half_life = _duration(str(items[2])) if len(items) > 2 else None
        if half_life is not None and not (isinstance(factor, Counter)
                                          and factor.field in ("messages", "events")):
            raise SegmentError("a half-life (@…) applies to messages or events.<kind> only",
                               points_token.column or 0)
        if half_life is not None and half_life.total_seconds() <= 0:
            raise SegmentError("the half-life must be positive", points_token.column or 0)
        assert isinstance(factor, Counter | Condition | Not | AllOf | AnyOf)
        return Term(points, factor, half_life)

    def formula(self, terms: list[Term]) -> Formula:
        return Formula(tuple(terms))


@lru_cache(maxsize=2)
def _parser(start: str) -> Lark:
    return Lark(GRAMMAR, start=start, parser="lalr")


def _run(text: str, start: str) -> object:
    if not text.strip():
        raise SegmentError("empty expression")
    if len(text) > 4000:
        raise SegmentError("expression longer than 4000 characters")
    try:
        tree = _parser(start).parse(text)
        return _Build().transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, SegmentError):
            raise exc.orig_exc from None
        raise
    except UnexpectedInput as exc:
        near = text[max(0, exc.pos_in_stream or 0):][:12] if exc.pos_in_stream is not None else ""
        column = exc.column if isinstance(exc.column, int) and exc.column > 0 else 0
        if near:
            raise SegmentError("unexpected input near {near!r}", column, near=near) from None
        raise SegmentError("incomplete expression", column) from None


@lru_cache(maxsize=1024)
def parse_segment(text: str) -> Node:
    """Parse a segment expression; raises SegmentError naming the column. Cached (nodes are
    frozen): ingest re-checks every rule tag's expression for each event."""
    node = _run(text, "start")
    assert isinstance(node, Condition | Not | AllOf | AnyOf)
    return node


def parse_formula(text: str) -> Formula:
    """Parse a lead-scoring formula; raises SegmentError naming the column."""
    formula = _run(text, "formula")
    assert isinstance(formula, Formula)
    return formula


def describe(node: Node) -> str:
    """The expression written back in its canonical form (round-trips through parse)."""
    match node:
        case Condition():
            return node.label
        case Not():
            return f"not {_wrap(node.inner)}"
        case AllOf():
            return " and ".join(_wrap(p) for p in node.parts)
        case AnyOf():
            return " or ".join(_wrap(p) for p in node.parts)


def _wrap(node: Node) -> str:
    return f"({describe(node)})" if isinstance(node, AllOf | AnyOf) else describe(node)


def conditions(node: Node) -> list[Condition]:
    """Every condition in the tree, left to right."""
    match node:
        case Condition():
            return [node]
        case Not():
            return conditions(node.inner)
        case AllOf() | AnyOf():
            return [c for part in node.parts for c in conditions(part)]
