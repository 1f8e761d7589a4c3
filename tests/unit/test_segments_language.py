"""The segment language and lead formulas parse, print back and fail with a column."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from qunyun.domain.segments import (
    AllOf,
    AnyOf,
    Condition,
    Counter,
    Not,
    SegmentError,
    conditions,
    describe,
    parse_formula,
    parse_segment,
)


def test_seed_segment_parses_into_three_conditions() -> None:
    node = parse_segment('series = "奥数" and attr.错题率 > 30% and series = 阅读')
    assert isinstance(node, AllOf)
    assert conditions(node) == [
        Condition("series", "", "=", "奥数", None, 1),
        Condition("attr", "错题率", ">", 0.3, None, 19),
        Condition("series", "", "=", "阅读", None, 38),
    ]


@pytest.mark.parametrize("text", [
    'tag = "问过价格" and not blacklisted and messages[30d] >= 5',
    '(tag = "a" or tag = "b") and last_seen >= -30d and joined < 2026-01-01',
    'tag ~ "奥数" or not (group = "x" and channel = "渠道A")',
    "events.checkin[1w] >= 5 and has_phone",
    'said[24h] ~ "多少钱"',
])
def test_describe_round_trips(text: str) -> None:
    once = describe(parse_segment(text))
    assert describe(parse_segment(once)) == once


def test_chinese_connectives_and_quotes() -> None:
    node = parse_segment("tag = “高意向” 且 非 blacklisted 或 number = 10001")
    assert isinstance(node, AnyOf) and isinstance(node.parts[0], AllOf)
    assert isinstance(node.parts[0].parts[1], Not)


def test_values_are_typed() -> None:
    c = conditions(parse_segment("joined >= 2026-3-1 and last_seen >= -2w and number = 10001"))
    assert c[0].value == date(2026, 3, 1)
    assert c[1].value == timedelta(weeks=2)
    assert c[2].value == 10001.0


@pytest.mark.parametrize(("text", "message"), [
    ("foo = 1", "column 1: unknown field 'foo'"),
    ("tag > 3", "column 1: tag does not take '>'"),
    ('messages >= "x"', "messages compares with a number"),
    ("blacklisted = 1", "blacklisted is a flag"),
    ("events >= 3", "events needs a name after the dot"),
    ("tag[3d] = a", "tag takes no [window]"),
    ('attr.x > "a"', "'>' needs a number"),
    ("joined = 2026-13-01", "not a date"),
    ('tag = "a" and', "column 11"),
    ("", "empty expression"),
])
def test_errors_say_what_and_where(text: str, message: str) -> None:
    with pytest.raises(SegmentError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_segment(text)


def test_formula_terms() -> None:
    f = parse_formula('1 * messages @14d + 5 * events.checkin[30d] @30d + 20 * (tag = "问过价格")'
                      " + 0.01 * attr.spend")
    assert [t.points for t in f.terms] == [1, 5, 20, 0.01]
    assert f.terms[0].factor == Counter("messages", "") and f.terms[0].half_life == timedelta(14)
    assert f.terms[1].factor == Counter("events", "checkin", timedelta(30))
    assert isinstance(f.terms[2].factor, Condition)
    assert f.terms[2].label == '20 * (tag = "问过价格")'


@pytest.mark.parametrize(("text", "message"), [
    ("1 * tag", "tag is not a number"),
    ("2 * attr.x @3d", "half-life"),
    ("3 * messages +", "column 14"),
    ("messages", "unexpected"),
])
def test_formula_errors(text: str, message: str) -> None:
    with pytest.raises(SegmentError, match=message):
        parse_formula(text)
