"""Pure parts of automation: normalisation, the classifier, FAQ matching, draws, simulator."""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import UTC, datetime

import pytest

from qunyun.adapters.platforms.sandbox.simulate import Scenario, generate
from qunyun.domain.actions import SendText, fill_names
from qunyun.domain.text import compact, normalize
from qunyun.engine.faq import FaqEntry, FaqIndex, compile_regex
from qunyun.engine.moderation import BigramModel, Classifier, WordList, default_model
from qunyun.services.draws import Prize, pick


def test_normalise_defeats_width_traditional_and_spacing() -> None:
    assert compact(normalize("ＶＸ：加 微.信")) == "vx加微信"
    assert normalize("請問團購價格") == "请问团购价格"


def test_word_lists_match_after_normalising_and_block_only_when_told() -> None:
    clf = Classifier([WordList("禁", "block", ("违禁品",)), WordList("广告", "weak", ("客服",))])
    assert clf.classify("出售違禁品").verdict == "block"
    assert clf.classify("客服电话是多少？").verdict == "ok"  # a generic ad word alone


def test_ad_signals_need_contact_and_lure_together() -> None:
    clf = Classifier()
    ad = clf.classify("兼职刷单日结300，加薇 abc_12345")
    assert ad.verdict == "block" and "含微信/QQ号" in ad.reasons
    assert clf.classify("我的借款额度为什么降低了？").verdict == "ok"
    assert clf.classify("联系电话 138 1234 5678，低息贷款当天放款").verdict == "block"
    assert clf.classify("扫码", message_type="qrcode").score > clf.classify("扫码").score


def test_faq_answers_paraphrases_and_stays_silent_otherwise() -> None:
    index = FaqIndex([FaqEntry(id="refund", questions=("定金可以退吗", "交了定金还能退吗")),
                      FaqEntry(id="ship", questions=("什么时候发货",)),
                      FaqEntry(id="rules", questions=(), match="contains", pattern="群规|公告")])
    assert index.match("请问定金能退吗？").id == "refund"  # type: ignore[union-attr]
    assert index.match("什么时候发货呀") is not None
    assert index.match("群规在哪看").id == "rules"  # type: ignore[union-attr]
    assert index.match("今天天气真好") is None
    assert index.match("定金") is None  # one word is not a question


def test_regex_faqs_run_in_linear_time_and_old_patterns_are_skipped() -> None:
    index = FaqIndex([FaqEntry(id="evil", questions=(), match="regex", pattern="^(a+)+$"),
                      FaqEntry(id="old", questions=(), match="regex", pattern=r"(价)\1"),
                      FaqEntry(id="price", questions=(), match="regex", pattern="价格|多少钱")])
    # Python's re backtracks 2^35 times on this; RE2 answers at once
    assert index.match("a" * 35 + "!") is None
    assert index.match("A" * 40).id == "evil"  # type: ignore[union-attr]
    assert index.skipped_patterns == 1  # a back reference RE2 cannot run never matches
    assert index.match("请问多少钱").id == "price"  # type: ignore[union-attr]
    assert index.match("x" * 3000 + "多少钱") is None  # only the first 2,000 characters
    with pytest.raises(ValueError, match="escape"):
        compile_regex(r"(a)\1")


def test_batched_welcome_merges_names_once() -> None:
    first = SendText(group_id=1, text="", mention_member_ids=(1,), names=("张三",),
                     template="欢迎 @{name}！", batch_key="welcome", batch_seconds=60)
    merged = first.merged(SendText(group_id=1, text="", mention_member_ids=(2,),
                                   names=("李四",)))
    assert merged.text == "欢迎 @张三 @李四！" and merged.mention_member_ids == (1, 2)
    assert merged.merged(SendText(group_id=1, text="", mention_member_ids=(2,),
                                  names=("李四",))).mention_member_ids == (1, 2)
    assert fill_names("欢迎{name}", ("a", "b")) == "欢迎a、b"


def test_draws_are_deterministic_and_respect_stock() -> None:
    pool = list(range(1, 101))
    a = pick(pool, "s1", kind="lottery", prizes=[Prize("一等奖", 1), Prize("二等奖", 3)])
    assert a == pick(list(reversed(pool)), "s1", kind="lottery",
                     prizes=[Prize("一等奖", 1), Prize("二等奖", 3)])
    assert Counter(w["prize"] for w in a) == {"一等奖": 1, "二等奖": 3}
    assert a != pick(pool, "s2", kind="lottery", prizes=[Prize("一等奖", 1),
                                                          Prize("二等奖", 3)])
    packet = pick(pool, "s1", kind="red_packet", prizes=[], amount_cents=1000, count=7)
    assert sum(round(w["amount"] * 100) for w in packet) == 1000
    assert min(w["amount"] for w in packet) >= 0.01


def _gini(values: list[int]) -> float:
    xs = sorted(values)
    n, total = len(xs), sum(xs)
    return sum((2 * i - n - 1) * x for i, x in enumerate(xs, 1)) / (n * total)


def test_simulator_is_deterministic_and_heavy_tailed() -> None:
    end = datetime(2026, 11, 20, 12, tzinfo=UTC)
    sc = Scenario(groups=2, members=300, days=14, seed=3, end=end)
    events = list(generate(sc))
    assert events == list(generate(sc))
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    kinds = Counter(e["type"] for e in events)
    assert kinds["group"] == 2 and kinds["join"] >= 270 and kinds["leave"] > 0
    assert any(e.get("inviter", "").startswith("sim-g-u") for e in events)  # member invites
    joined = {e["user"] for e in events if e["type"] == "join" and e["chat"] == "sim-g1"}
    said = Counter(e["user"] for e in events if e["type"] == "message" and e["chat"] == "sim-g1")
    gini = _gini([said.get(u, 0) for u in joined])
    assert 0.7 < gini < 0.97
    assert any("加V" in e.get("text", "") or "微信" in e.get("text", "") for e in events)


def test_short_simulations_run_and_end_before_the_end() -> None:
    """``qunyun simulate --days 2`` (3, 4) crashed on an empty randint range."""
    end = datetime(2026, 11, 20, 12, tzinfo=UTC)
    for days in range(1, 6):
        events = list(generate(Scenario(groups=2, members=40, days=days, seed=days, end=end)))
        assert events and max(e["at"] for e in events) < end.isoformat(), days
        assert any(e["type"] == "message" and e["user"].endswith("spam0") for e in events)


def test_bigram_model_scores_as_its_definition_says() -> None:
    """logodds walks the known bigrams with an automaton; it must equal the plain definition
    (the mean known-bigram weight × √n, clipped), one-character texts included."""
    model = default_model()
    weights = model.weights()

    def by_definition(text: str) -> float:
        grams = [text[i:i + 2] for i in range(len(text) - 1)] or ([text] if text else [])
        known = [weights[g] for g in grams if g in weights]
        if not known:
            return 0.0
        return max(-4.0, min(4.0, sum(known) / len(known) * math.sqrt(len(known))))

    rng = random.Random(3)
    alphabet = "加微信领红包免费兼职日结打卡今天天气不错群里好的收到v123"
    # "早" alone is in the seed corpus, so it is a one-character gram of its own
    randoms = ("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
               for _ in range(500))
    texts = ["", "加", "早", "微信", *randoms]
    assert [model.logodds(t) for t in texts] == [by_definition(t) for t in texts]
    assert weights.get("早") is not None and model.logodds("早") != 0.0
    assert any(by_definition(t) > 1 for t in texts) and any(by_definition(t) < -1 for t in texts)
    assert BigramModel().logodds("加微信") == 0.0  # an untrained model knows no gram


def test_faq_words_are_the_compact_jieba_words_without_stop_words() -> None:
    """tokenize skips the compacting regex for words that are letters, digits and ideographs
    only; the words must be those of compacting every word (underscores, full-width signs,
    ①, emoji and spaces included)."""
    import rjieba

    from qunyun.engine.faq import _STOP, tokenize

    def by_definition(text: str) -> list[str]:
        words = (compact(w) for w in rjieba.cut(normalize(text), hmm=False))
        return [w for w in words if w and w not in _STOP]

    rng = random.Random(5)
    alphabet = "请问沙发什么时候发货可以退吗_ a1Ｂ２①，。？!😀-·的了吗x_y"
    texts = ["", "  ", "沙发_什么时候发货？", "a_b c", *(
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20))) for _ in range(2000))]
    assert [tokenize(t) for t in texts] == [by_definition(t) for t in texts]
    assert any("_" in "".join(rjieba.cut(normalize(t), hmm=False)) for t in texts)


def test_signal_gate_agrees_with_a_plain_search_of_every_pattern() -> None:
    """The gate looks plain-word branches up in one automaton and tries the rest only from the
    first character a match can begin with (read off the pattern); it must say yes exactly
    when some signal pattern matches."""
    import re

    from qunyun.adapters.platforms.sandbox.simulate import DEFAULT_ADS, DEFAULT_TALK, TAILS
    from qunyun.domain.text import normalize as norm
    from qunyun.engine import moderation as m

    rng = random.Random(7)
    alphabet = ("加微信vVxQq群1３5-. ·【】[]¥$元折兼职日结wwW.com http:/ "
                "私聊我有一二三四五六七八九零扫码欢迎光临本人出售贷款")
    texts = [norm(t) for t in (*DEFAULT_TALK, *DEFAULT_ADS, *TAILS, *(
        text for text, _spam in m.seed_samples()), *(
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24))) for _ in range(4000)))]
    for gate, on_digits in ((m._ON_TEXT, False), (m._ON_DIGITS, True)):
        assert gate.pattern is not None and gate.starts is not None
        patterns = [s.pattern for s in m._SIGNALS if s.on_digits == on_digits]
        found = [any(p.search(t) for p in patterns) for t in texts]
        assert [gate(t) for t in texts] == found
        assert any(found) and not all(found)
        assert any(gate.starts.search(t) is None for t in texts)  # turned away at once
    assert m._ON_TEXT.words is not None and len(m._ON_TEXT.words) > 100
    # the branches: escapes, groups and classes (with | or ] inside) stay whole
    assert m._alternatives(r"a|(b|c)|[|]|\||[]|]x|[^]a]|\[[^\]]{2}\]$") == [
        "a", "(b|c)", "[|]", r"\|", "[]|]x", "[^]a]", r"\[[^\]]{2}\]$"]
    assert [m._literal(b) for b in ("私聊", "在家(?:办公)", "在家(?:办公|赚)", "回td", "x",
                                    "加\\s*v")] == [
        "私聊", "在家办公", None, None, None, None]  # caseless plain text only
    # the reading itself: optional and zero-width parts, classes, case, and what it refuses
    gate = m._first_chars(re.compile(r"(?<![x])a?b|\bc\d|[e-g]", re.IGNORECASE))
    assert gate is not None
    assert {c for c in "abcdefgABCxyz1" if gate.match(c)} == set("abcefgABC")
    gate = m._first_chars(re.compile("(?:a?|b)c"))  # every branch counts, empty or not
    assert gate is not None and {c for c in "abcd" if gate.match(c)} == set("abc")
    assert m._first_chars(re.compile("a*")) is None  # matches the empty string
    assert m._first_chars(re.compile("a|.b")) is None  # "any character": no class to give


def test_classifier_reads_list_words_and_bigrams_in_one_pass_as_each_alone() -> None:
    """Classifier.scan shares one automaton between the word lists and the model's bigrams;
    it must find what WordMatcher.scan and BigramModel.logodds find apart — with words that
    are bigrams themselves, one-character words and texts, and overlapping words."""
    lists = [WordList("ads", "review", ("微信", "加微信", "兼职", "日结工资", "v")),
             WordList("bad", "block", ("微信", "赌")),
             WordList("weak", "weak", ("领红包",))]
    rng = random.Random(11)
    alphabet = "加微信领红包免费兼职日结工资打卡今天天气不错群里好的收到v赌123"
    texts = ["", "v", "赌", "加", "微信", "加微信", *(
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(800))]
    for model in (default_model(), BigramModel()):
        classifier = Classifier(lists, model=model)
        for text in texts:
            found, nb = classifier.scan(text)
            assert sorted(found) == sorted(classifier.words.scan(text)), text
            assert nb == model.logodds(text), text
    assert Classifier([], model=BigramModel()).scan("加微信") == ([], 0.0)
    hits = [Classifier(lists).scan(t) for t in texts]
    assert any(len(found) >= 3 for found, _ in hits) and any(nb > 1 for _, nb in hits)
