"""The message catalogs match the code, and what people read comes from them."""

from __future__ import annotations

import pytest

from qunyun.i18n import LANGUAGES, catalog, money, number, percent, translate
from qunyun.services.errors import AccessDenied, InvalidInput, NotFound, in_words
from tools.catalogs import is_key, problems, scan


def test_every_id_in_the_code_is_in_both_catalogs_and_none_is_unused() -> None:
    assert problems() == []


def test_extraction_sees_page_keys_command_keys_and_error_sentences() -> None:
    found = scan()
    assert "nav.dashboard" in found.ids  # a template's t('…')
    assert "cli.timeline_which" in found.ids  # a command's say('…')
    assert "tag {ref!r} not found" in found.ids  # a service error


def test_page_keys_are_translated_in_both_languages() -> None:
    keys = [k for k in catalog("zh-CN") if is_key(k)]
    assert len(keys) > 500
    for key in keys:
        for lang in LANGUAGES:
            assert catalog(lang).get(key), f"{key} lacks {lang}"


def test_a_service_error_reads_english_in_logs_and_chinese_for_people() -> None:
    exc = NotFound("tag {ref!r} not found", ref="VIP")
    assert str(exc) == "tag 'VIP' not found"
    assert exc.in_language("zh-CN") == "找不到标签 'VIP'"
    assert exc.in_language("en") == "tag 'VIP' not found"
    wrapped = InvalidInput.wrap(exc)
    assert wrapped.in_language("zh-CN") == "找不到标签 'VIP'" and wrapped.status_code == 422


def test_a_refusal_by_role_names_the_role_not_its_code() -> None:
    exc = AccessDenied("role {role} may not {permission}", role="viewer",
                       permission="operate")
    assert str(exc) == "role viewer may not operate"
    said = in_words(exc, "zh-CN")
    assert "viewer" not in said and "operate" not in said and translate(
        "role.viewer", "zh-CN") in said


def test_unknown_keys_read_as_themselves_and_unknown_languages_as_chinese() -> None:
    assert translate("no such key here", "zh-CN") == "no such key here"
    assert translate("nav.dashboard", "fr") == translate("nav.dashboard", "zh-CN")


@pytest.mark.parametrize(("lang", "yuan", "num", "share"), [
    ("zh-CN", "¥1,234.50", "12,345.7", "42%"),
    ("en", "CN¥1,234.50", "12,345.7", "42%"),
])
def test_money_numbers_and_shares_follow_the_locale(lang: str, yuan: str, num: str,
                                                    share: str) -> None:
    assert money(1234.5, lang) == yuan
    assert number(12345.67, lang, 1) == num
    assert percent(0.4166, lang) == share
    assert money(None, lang) == number(None, lang) == percent(None, lang) == ""


def test_a_reason_inside_a_refusal_is_translated_too() -> None:
    from qunyun.i18n import InvalidValue
    from qunyun.services.activities import fail_or_keep

    with pytest.raises(InvalidInput) as refused:
        fail_or_keep([], "fail", "form.csv", 2,
                     InvalidValue("activity {code}: not found", code="X1"))
    assert str(refused.value) == "form.csv: line 2: activity X1: not found (nothing was imported)"
    assert refused.value.in_language("zh-CN") == (
        "form.csv：第 2 行：找不到活动 X1（未导入任何内容）")
    kept: list[dict[str, object]] = []
    fail_or_keep(kept, "skip", "form.csv", 3, InvalidValue("activity {code}: not found",
                                                           code="X2"))
    assert kept == [{"file": "form.csv", "line": 3, "reason": "activity X2: not found"}]


@pytest.mark.parametrize(("typed", "expected"), [
    ("2026-12-04 20:00", "2026-12-04 20:00"), ("2026/12/04 20:00", "2026-12-04 20:00"),
    ("12/04 20:00", "2026-12-04 20:00"), ("12月4日20:00", "2026-12-04 20:00"),
    ("明天 20:00", "2026-12-04 20:00"), ("明天20点", "2026-12-04 20:00"),
    ("今天 9点30", "2026-12-03 09:30"), ("20:00", "2026-12-03 20:00"),
    ("后天 8:05", "2026-12-05 08:05"), ("2026-12-04T20:00", "2026-12-04 20:00"),
])
def test_times_are_read_as_people_type_them(typed: str, expected: str) -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from qunyun.domain.content import parse_local_time

    tz = ZoneInfo("Asia/Shanghai")
    now = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)  # noon on the 3rd in Shanghai
    got = parse_local_time(typed, tz, "send_at", now=now)
    assert got is not None and got.tzinfo is not None
    assert got.astimezone(tz).strftime("%Y-%m-%d %H:%M") == expected


@pytest.mark.parametrize("typed", ["13/45 20:00", "明天 25:00", "next week", "12/04"])
def test_a_time_that_is_not_one_is_named(typed: str) -> None:
    from zoneinfo import ZoneInfo

    from qunyun.domain.content import ContentError, parse_local_time

    with pytest.raises(ContentError) as refused:
        parse_local_time(typed, ZoneInfo("Asia/Shanghai"), "send_at")
    assert "明天 20:00" in refused.value.in_language("zh-CN") and typed in str(refused.value)


def test_a_target_reads_in_the_readers_language() -> None:
    """Descriptions code makes (a broadcast's target) are English for programs and the
    reader's language on pages and in commands."""
    from qunyun.i18n import said
    from qunyun.services.pushes import describe_target

    groups = describe_target({"groups": [1, 2, 3]})
    assert groups == "3 groups" and said(groups, "zh-CN") == "3 个群"
    tag = describe_target({"group_tag": "新人群"})
    assert said(tag, "zh-CN") == "群标签「新人群」" and said(tag, "en") == "group tag “新人群”"
    assert said("plain text", "zh-CN") == "plain text"
