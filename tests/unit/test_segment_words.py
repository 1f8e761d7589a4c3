"""The builders' side of the segment language: expressions read back into rows, and
conditions and lead-score terms said in words (no code words reach a person)."""

from __future__ import annotations

import re

import pytest

from qunyun.domain.segments import parse_formula, parse_segment
from qunyun.services.segment_words import (
    builder_spec,
    formula_to_builder,
    node_words,
    term_words,
    to_builder,
)

CODE = re.compile(r"\b(messages|events|attr|current_group|last_seen|first_seen|has_phone|"
                  r"blacklisted|checkin)\b|\[\d+[dhw]\]|@\d+|[=<>~]")
KEYWORDS = re.compile(r"\b(and|or|not)\b")  # English words in English, code words in Chinese


def test_the_spec_names_every_field_and_comparison_in_both_languages() -> None:
    for lang in ("zh-CN", "en"):
        spec = builder_spec(lang, tags=["意向/问过价格"], event_kinds=["checkin"])
        for field in spec["fields"]:
            assert field["label"] and not field["label"].startswith("seg."), field
            assert field["help"] and not field["help"].startswith("seg.")
        assert all(not v.startswith("seg.") for v in spec["ops"].values())
        assert all(not v.startswith("seg.") for v in spec["words"].values())
    events = next(f for f in builder_spec("zh-CN", event_kinds=["checkin"])["fields"]
                  if f["name"] == "events")
    assert events["key_labels"] == {"checkin": "打卡"} and events["keyed"]


def test_an_expression_reads_back_into_groups_of_rows() -> None:
    state = to_builder('tag = "意向/问过价格" and not blacklisted and messages[30d] >= 5')
    assert state is not None and state["join"] == "and"
    (group,) = state["groups"]
    assert [(r["field"], r["op"], r["value"], r["window"], r["not"]) for r in group["rows"]] == [
        ("tag", "=", "意向/问过价格", "", False), ("blacklisted", "", "", "", True),
        ("messages", ">=", "5", "30d", False)]
    mixed = to_builder('channel = "海报A" and (said ~ "多少钱" or said ~ "价格")')
    assert mixed is not None and [g["join"] for g in mixed["groups"]] == ["and", "or"]
    assert to_builder("joined >= -30d")["groups"][0]["rows"][0]["value"] == "-30d"  # type: ignore[index]
    assert to_builder("") is None and to_builder("tag = ") is None
    # deeper than groups of rows: the expression box keeps it
    assert to_builder('not (tag = "a" or (tag = "b" and tag = "c"))') is None


def test_a_formula_reads_back_into_terms() -> None:
    terms = formula_to_builder('1 * messages[30d] @14d + 20 * (tag = "问过价格")')
    assert terms == [
        {"points": "1", "field": "messages", "key": "", "window": "30d", "op": "",
         "value": "", "not": False, "half_life": "14d"},
        {"points": "20", "field": "tag", "key": "", "op": "=", "value": "问过价格",
         "window": "", "not": False, "half_life": ""}]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_segments_and_terms_in_words_carry_no_code(lang: str) -> None:
    node = parse_segment('tag = "问过价格" and not blacklisted and (messages[30d] >= 5 '
                         'or events.checkin >= 3) and joined >= -30d')
    said = node_words(node, lang)
    assert not CODE.search(said.replace("问过价格", "")), said
    assert lang == "en" or not KEYWORDS.search(said), said
    formula = parse_formula('1 * messages[30d] @14d + 5 * events.checkin + 20 * '
                            '(tag = "问过价格") + 0.01 * attr.spend')
    for term in formula.terms:
        words = term_words(term, lang)
        assert not CODE.search(words.replace("spend", "")), words
    if lang == "zh-CN":
        assert term_words(formula.terms[0], lang) == (
            "近 30 天发言条数，每次计 1 分（越早的越少算，14 天减半）")
        assert "打卡" in term_words(formula.terms[1], lang)
