"""Texts services store in Chinese (moderation reasons, health alerts, task titles) are read
in the reader's language (issue 26: English mode showed them in Chinese)."""

from __future__ import annotations

import pytest

from qunyun.engine.moderation import Classifier, fixed_reasons
from qunyun.i18n import saying, spoken, translate
from qunyun.services.moderation import reason_in, reasons_in


def test_every_fixed_reason_has_words_in_both_languages() -> None:
    for text, code in fixed_reasons().items():
        key = f"mod.reason.{code}"
        assert translate(key, "en") != key, key
        assert translate(key, "zh-CN") == text  # the catalog says what the engine writes


@pytest.mark.parametrize("stored,english", [
    ("命中词库「广告词」: 加微信", "matched word list “广告词”: 加微信"),
    ("刷屏：10 秒内 6 条", "flooding: 6 messages in 10 s"),
    ("重复消息：10 分钟内第 3 次", "repeated: 3 times in 10 min"),
    ("10 分钟内 4 人发了同样的广告", "4 people posted the same ad in 10 min"),
    ("消息已过处理时限，只记录不处理", "too old to act on: recorded only"),
    ("一句引擎以后才会写的话", "一句引擎以后才会写的话"),  # unknown forms stay as written
])
def test_reasons_read_in_english(stored: str, english: str) -> None:
    assert reason_in(stored, "en") == english
    assert reason_in(stored, "zh-CN") == stored


def test_a_classified_ad_explains_itself_in_english() -> None:
    verdict = Classifier().classify("兼职刷单日结300，加V：abc12345 联系电话 13812345678")
    assert verdict.reasons
    english = reasons_in(verdict.reasons, "en")
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in english), english


def test_stored_words_nest_and_old_text_stays() -> None:
    alert = saying("health.alert.ads", ads=12, share="30.0%")
    title = saying("health.task_title", group='业主群"1"', alert=alert)
    assert spoken(title, "en") == '业主群"1": Many ads: 12, 30.0% of messages'
    assert spoken(title, "zh-CN") == '业主群"1"：广告偏多：12 条，占消息 30.0%'
    assert spoken("群1：最近 3 天无人发言", "en") == "群1：最近 3 天无人发言"
    assert spoken(None, "en") == ""


def test_a_forwarded_post_weighs_as_a_likely_ad() -> None:
    """Telegram raids forward channel posts: a forward counts toward an ad and says so."""
    plain = Classifier().classify("今晚八点直播，点击进入 https://t.me/somechannel")
    forwarded = Classifier().classify("今晚八点直播，点击进入 https://t.me/somechannel",
                                      message_type="forward")
    assert forwarded.score > plain.score and "转发的消息" in forwarded.reasons
    assert reasons_in(forwarded.reasons, "en").count("a forwarded post") == 1
