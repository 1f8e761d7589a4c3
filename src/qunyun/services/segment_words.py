"""The segment language for people who do not write it: what the visual builders offer
(fields, comparisons and suggestions in the reader's words), an expression read back into
builder rows, and conditions and lead-score terms said in words.

The builders write the same expressions underneath (``static/builder.js``); the expression
box stays for power users, and an expression the rows cannot show (deeper nesting) is left
to the box with a note."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import groups, join_codes, member_attributes, tags
from qunyun.domain.history import MemberEventKind
from qunyun.domain.segments import (
    FIELDS,
    AllOf,
    AnyOf,
    Condition,
    Counter,
    Node,
    Not,
    SegmentError,
    Term,
    parse_formula,
    parse_segment,
)
from qunyun.domain.staff import Permission
from qunyun.i18n import translate
from qunyun.services.users import Actor

# the order fields are offered in (most used first)
ORDER = ("tag", "current_group", "group", "series", "channel", "messages", "said", "events",
         "attr", "joined", "last_seen", "first_seen", "number", "has_phone", "blacklisted")
WINDOWS = ("", "7d", "30d", "90d")
HALF_LIVES = ("", "7d", "14d", "30d")
RELATIVE = ("-7d", "-30d", "-90d")


def builder_spec(language: str, *, tags: Sequence[str] = (), attributes: Sequence[str] = (),
                 event_kinds: Sequence[str] = (), groups: Sequence[str] = (),
                 channels: Sequence[str] = (), series: Sequence[str] = ()) -> dict[str, Any]:
    """What a builder offers, in ``language``: each field with its label, kind of value,
    comparisons and suggested values; windows, half-lives and the words for and/or/not."""
    def t(key: str) -> str:
        return translate(key, language)

    suggest = {"tag": list(tags), "current_group": list(groups), "group": list(groups),
               "series": list(series), "channel": list(channels)}
    fields = []
    for name in ORDER:
        spec = FIELDS[name]
        kind = ("flag" if spec.flag else "date" if "date" in spec.values else
                "number" if spec.values == frozenset({"number"}) else
                "any" if len(spec.values) > 1 else "text")
        ops = [op for op in ("=", "!=", "~", ">", ">=", "<", "<=") if op in spec.ops]
        fields.append({
            "name": name, "label": t(f"seg.field.{name}"), "kind": kind, "ops": ops,
            "keyed": spec.keyed, "window": spec.window, "counter": spec.counter,
            "help": t(f"seg.help.{name}"), "values": suggest.get(name, []),
            "keys": (list(event_kinds) if name == "events" else
                     list(attributes) if name == "attr" else []),
            "key_labels": ({k: event_label(k, language) for k in event_kinds}
                           if name == "events" else {}),
        })
    return {
        "fields": fields,
        "ops": {op: t(f"seg.op.{_op_key(op)}") for op in ("=", "!=", "~", ">", ">=", "<", "<=")},
        "date_ops": {">": t("seg.op.after"), ">=": t("seg.op.since"), "<": t("seg.op.before"),
                     "<=": t("seg.op.until"), "=": t("seg.op.on"), "!=": t("seg.op.not_on")},
        "windows": {w: (t("seg.window.all") if not w else t("seg.window.choice")
                        .format(n=_days(w))) for w in WINDOWS},
        "half_lives": {h: (t("seg.half_life.none") if not h else t("seg.half_life.days")
                           .format(n=_days(h))) for h in HALF_LIVES},
        "relative": {r: t("seg.relative").format(n=_days(r)) for r in RELATIVE},
        "words": {k: t(f"seg.ui.{k}") for k in (
            "and", "or", "not", "all", "any", "add_row", "add_group", "remove", "group",
            "points", "times", "add_term", "value", "key", "counts", "matches", "apply",
            "too_deep", "half_life", "window")},
    }


def _op_key(op: str) -> str:
    return {"=": "eq", "!=": "ne", "~": "contains", ">": "gt", ">=": "ge", "<": "lt",
            "<=": "le"}[op]


def _days(text: str) -> int:
    unit = text[-1]
    amount = int(text.strip("-")[:-1])
    return amount * {"d": 1, "w": 7}.get(unit, 1)


def event_label(kind: str, language: str) -> str:
    """An event kind in words (``checkin`` → 打卡); an unknown kind stays as named."""
    key = f"event.kind.{kind}"
    said = translate(key, language)
    return kind if said == key else said


# --- an expression read back into builder rows ----------------------------------------------

def to_builder(text: str) -> dict[str, Any] | None:
    """A segment as ``{"join", "groups": [{"join", "rows": [...]}]}``, or None when it is
    empty, does not parse or nests deeper than groups of rows (the box keeps it)."""
    if not text.strip():
        return None
    try:
        node = parse_segment(text)
    except SegmentError:
        return None
    if _row(node) is not None:
        return {"join": "and", "groups": [{"join": "and", "rows": [_row(node)]}]}
    if not isinstance(node, AllOf | AnyOf):
        return None
    outer = "and" if isinstance(node, AllOf) else "or"
    groups: list[dict[str, Any]] = []
    loose: list[dict[str, Any]] = []
    for part in node.parts:
        row = _row(part)
        if row is not None:
            loose.append(row)
        elif isinstance(part, AllOf | AnyOf) and type(part) is not type(node):
            found = [_row(p) for p in part.parts]
            rows = [r for r in found if r is not None]
            if len(rows) < len(found):
                return None
            groups.append({"join": "and" if isinstance(part, AllOf) else "or", "rows": rows})
        else:
            return None
    if loose:
        groups.insert(0, {"join": outer, "rows": loose})
    return {"join": outer, "groups": groups}


def _row(node: Node) -> dict[str, Any] | None:
    negated = isinstance(node, Not)
    inner = node.inner if isinstance(node, Not) else node
    if not isinstance(inner, Condition):
        return None
    return {"field": inner.field, "key": inner.key, "op": inner.op or "",
            "value": _value_text(inner.value), "window": _span(inner.window),
            "not": negated}


def _value_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, timedelta):
        return "-" + _span(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _span(value: timedelta | None) -> str:
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    return f"{seconds // 86400}d" if seconds % 86400 == 0 else f"{seconds // 3600}h"


def formula_to_builder(text: str) -> list[dict[str, Any]] | None:
    """A lead formula as builder terms, or None when a term's condition is more than one
    row (the box keeps it)."""
    try:
        formula = parse_formula(text)
    except SegmentError:
        return None
    terms = []
    for term in formula.terms:
        factor = term.factor
        if isinstance(factor, Counter):
            terms.append({"points": f"{term.points:g}", "field": factor.field,
                          "key": factor.key, "window": _span(factor.window), "op": "",
                          "value": "", "not": False, "half_life": _span(term.half_life)})
            continue
        row = _row(factor)
        if row is None:
            return None
        terms.append({"points": f"{term.points:g}", **row, "half_life": ""})
    return terms


# --- in words -----------------------------------------------------------------------------

def condition_words(cond: Condition, language: str, negated: bool = False) -> str:
    """``messages[30d] >= 5`` → 近 30 天发言条数 至少 5."""
    def t(key: str) -> str:
        return translate(key, language)

    left, right = ("「", "」") if language == "zh-CN" else (" “", "”")
    name = t(f"seg.field.{cond.field}")
    if cond.field == "events":
        name = f"{name}{left}{event_label(cond.key, language)}{right}"
    elif cond.key:
        name = f"{name}{left}{cond.key}{right}"
    if cond.window is not None:
        name = t("seg.window.last").format(n=int(cond.window.total_seconds() // 86400)) + name
    if cond.op is None:
        said = name
    else:
        spec = FIELDS[cond.field]
        op = ({">": "after", ">=": "since", "<": "before", "<=": "until", "=": "on",
               "!=": "not_on"}[cond.op] if "date" in spec.values else _op_key(cond.op))
        value = cond.value
        shown = (t("seg.relative").format(n=int(value.total_seconds() // 86400))
                 if isinstance(value, timedelta) else
                 f"{value:g}" if isinstance(value, float) else
                 f"“{value}”" if isinstance(value, str) else str(value))
        said = f"{name} {t('seg.op.' + op)} {shown}"
    return t("seg.ui.not") + " " + said if negated else said


def node_words(node: Node, language: str) -> str:
    """A whole segment in words, groups in brackets."""
    if isinstance(node, Condition):
        return condition_words(node, language)
    if isinstance(node, Not):
        if isinstance(node.inner, Condition):
            return condition_words(node.inner, language, negated=True)
        return translate("seg.ui.not", language) + _bracket(node_words(node.inner, language),
                                                             language)
    joiner = (translate("seg.ui.and", language) if isinstance(node, AllOf)
              else translate("seg.ui.or", language))
    return f" {joiner} ".join(
        _bracket(node_words(p, language), language) if isinstance(p, AllOf | AnyOf) else
        node_words(p, language) for p in node.parts)


def _bracket(text: str, language: str) -> str:
    return f"（{text}）" if language == "zh-CN" else f" ({text})"


def term_words(term: Term, language: str) -> str:
    """A lead-score term in words: what it counts and how it is weighed."""
    factor = term.factor
    if isinstance(factor, Counter):
        counted = condition_words(Condition(factor.field, factor.key, None, None,
                                            factor.window), language)
        form = (translate("seg.term.value", language) if factor.field == "attr"
                else translate("seg.term.counter", language))
        said = form.format(what=counted, points=f"{term.points:g}")
    else:
        said = translate("seg.term.condition", language).format(
            what=node_words(factor, language), points=f"{term.points:g}")
    if term.half_life is not None:
        said += translate("seg.term.half_life", language).format(
            n=int(term.half_life.total_seconds() // 86400))
    return said


def builder_for(conn: Connection, *, actor: Actor, language: str) -> dict[str, Any]:
    """The builder's spec with this team's names to pick from: tags, custom attributes,
    groups, group series and join-code channels (small tables; no scan of members)."""
    actor.require(Permission.VIEW)
    tag_names = [f"{r.tag_group}/{r.name}" if r.tag_group else str(r.name)
                 for r in conn.execute(select(tags.c.tag_group, tags.c.name)
                                       .order_by(tags.c.tag_group, tags.c.name).limit(200))]
    group_rows = conn.execute(select(groups.c.name, groups.c.series)
                              .order_by(groups.c.name).limit(500)).all()
    return builder_spec(
        language, tags=tag_names,
        attributes=list(conn.execute(select(member_attributes.c.name).distinct()
                                     .order_by(member_attributes.c.name).limit(200)).scalars()),
        event_kinds=[k.value for k in MemberEventKind],
        groups=sorted({str(g.name) for g in group_rows if g.name}),
        series=sorted({str(g.series) for g in group_rows if g.series}),
        channels=list(conn.execute(select(join_codes.c.channel).distinct()
                                   .order_by(join_codes.c.channel).limit(200)).scalars()))


def formula_words(text: str, language: str) -> list[str]:
    """Each term of a lead formula in words (the lead page says how it scores)."""
    return [term_words(term, language) for term in parse_formula(text).terms]
