"""FAQ matching (F12): exact, contains, regex and fuzzy questions → one FAQ id, or silence.

Fuzzy matching tokenises with jieba, ranks the FAQ's phrasings with BM25 (Okapi, k1 1.5,
b 0.75, over an inverted index so a question only touches phrasings sharing a word), then
decides with a *confidence* that does not depend on the FAQ's size: an IDF-weighted cosine
between the question's words and the phrasing's words (words the FAQ never uses count as
rare, so a question about something else scores low), blended with a character-bigram Dice
that forgives segmentation differences. It answers only above ``min_score`` and when the best
FAQ beats the runner-up by ``min_margin``: a wrong answer is worse than none, and an
unanswered question goes to staff.

Regex FAQs run on RE2 (google-re2), which matches in time linear in the text: with Python's
``re`` a pattern like ``^(a+)+$`` against a 35-character message stalled the store's write
transaction. Patterns are checked with RE2 when saved; only the first ``MAX_REGEX_TEXT``
characters of a message are searched.

Speed: words are cut by jieba-rs (~3 µs a message; Python jieba took ~30), and an
Aho-Corasick pass over the FAQ's own words runs first: a message sharing no word with any
phrasing cannot score and is skipped untouched.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import ahocorasick
import re2  # type: ignore[import-untyped]

from qunyun.domain.text import compact, flat, normalize
from qunyun.i18n import InvalidValue

MAX_REGEX_TEXT = 2000
MAX_PATTERN = 500
MatchKind = Literal["fuzzy", "exact", "contains", "regex"]
MATCH_KINDS: tuple[str, ...] = ("fuzzy", "exact", "contains", "regex")

# particles and fillers that carry no intent; punctuation is dropped by ``compact``
_STOP_WORDS = ("的 了 吗 呢 吧 啊 呀 哦 嘛 么 啦 哈 嗯 是 在 有 我 你 他 她 它 我们 你们 请问 "
               "请 问 一下 下 想 要 能 会 可以 这个 那个 这 那 就 都 也 还 和 与 及"
               " 亲 您 好 你好 谢谢")
_STOP = frozenset(_STOP_WORDS.split(" "))


def compile_regex(pattern: str) -> object:
    """A case-insensitive RE2 pattern; ``ValueError`` names what RE2 refuses (back
    references and look-arounds: RE2 guarantees linear time by leaving them out)."""
    if len(pattern) > MAX_PATTERN:
        raise InvalidValue("at most {limit} characters", limit=MAX_PATTERN)
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    options.max_mem = 8 << 20
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise InvalidValue(str(detail)) from None


def tokenize(text: str) -> list[str]:
    """jieba words of the normalised text, without punctuation and stop words.

    Cut by rjieba (jieba-rs: jieba's algorithm and default dictionary in Rust). Its words are
    the same as Python jieba's ``lcut(HMM=False)`` — checked on 313k texts (the FAQ pairs, the
    spam SMS, the engine bench corpus): no difference — at a tenth of the time."""
    # imported on first use: its dictionary is ~34 MB of every process that loads the
    # engine, and most (an import, the CLI, the web app's pages) never tokenize
    import rjieba

    words = rjieba.cut(normalize(text), hmm=False)
    out = []
    for w in words:
        # letters, digits and ideographs only is already compact (\w less "_"): skip the regex
        c = w if w.isalnum() else compact(w)
        if c and c not in _STOP:
            out.append(c)
    return out


def _bigrams(text: str) -> Counter[str]:
    return Counter(text[i:i + 2] for i in range(len(text) - 1))


def _dice(a: Counter[str], a_total: int, b: Counter[str], b_total: int) -> float:
    """Dice over bigram multisets; the totals are passed in (a phrasing's once, at build)."""
    total = a_total + b_total
    if not total:
        return 0.0
    shared = 0
    for g, c in a.items():
        d = b.get(g)
        if d:
            shared += c if c < d else d
    return 2.0 * shared / total


@dataclass(frozen=True, slots=True)
class FaqEntry:
    id: str
    questions: tuple[str, ...]
    answer: str = ""
    match: MatchKind = "fuzzy"
    pattern: str = ""  # contains: words separated by |; regex: a Python regular expression


@dataclass(frozen=True, slots=True)
class FaqMatch:
    id: str
    score: float
    how: str
    question: str = ""

    def to_json(self) -> dict[str, object]:
        return {"match": self.id, "score": round(self.score, 4), "how": self.how,
                "question": self.question}


@dataclass(frozen=True, slots=True)
class _Doc:
    entry: FaqEntry
    question: str
    tokens: tuple[str, ...]
    grams: Counter[str]
    counts: Counter[str]
    gram_total: int


_K1 = 1.5
_B = 0.75
_COSINE_SHARE, _DICE_SHARE = 0.65, 0.35  # of the confidence


class FaqIndex:
    def __init__(self, entries: Sequence[FaqEntry], *, min_score: float = 0.75,
                 min_margin: float = 0.05) -> None:
        self.min_score = min_score
        self.min_margin = min_margin
        self.entries = tuple(entries)
        self._exact: dict[str, FaqEntry] = {}
        self._contains: list[tuple[FaqEntry, tuple[str, ...]]] = []
        self._regex: list[tuple[FaqEntry, object]] = []
        self.skipped_patterns = 0  # stored before RE2 and not valid there: never match
        docs: list[_Doc] = []
        for entry in self.entries:
            if entry.match == "contains":
                words = tuple(flat(w) for w in entry.pattern.split("|"))
                self._contains.append((entry, tuple(w for w in words if w)))
            elif entry.match == "regex":
                try:
                    self._regex.append((entry, compile_regex(entry.pattern)))
                except ValueError:
                    self.skipped_patterns += 1
            for q in entry.questions:
                key = flat(q)
                if key:
                    self._exact.setdefault(key, entry)
                if entry.match == "fuzzy" and key:
                    tokens = tuple(tokenize(q))
                    grams = _bigrams(key)
                    docs.append(_Doc(entry, q, tokens, grams, Counter(tokens),
                                     sum(grams.values())))
        self._docs = [d for d in docs if d.tokens]
        n = len(self._docs)
        df: Counter[str] = Counter()
        for d in self._docs:
            df.update(d.counts.keys())
        self._idf = {t: math.log(1 + (n + 1) / (c + 0.5)) for t, c in df.items()}
        self._unknown_idf = math.log(1 + (n + 1) / 0.5)
        # BM25 term weight: the Lucene form (always positive, unlike Okapi's for tiny FAQs)
        bm25_idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        avg = sum(len(d.tokens) for d in self._docs) / n if n else 1.0
        norm = [_K1 * (1 - _B + _B * len(d.tokens) / avg) for d in self._docs]
        self._doc_norm = [math.sqrt(sum((self._weight(t) * c) ** 2
                                        for t, c in d.counts.items())) for d in self._docs]
        # word → (its idf² for the cosine, [(phrasing, count, BM25 term)]): a
        # phrasing's BM25 term for a word does not depend on the question, so it is summed,
        # not recomputed, per question
        self._postings: dict[str, tuple[float, list[tuple[int, int, float]]]] = {}
        for i, d in enumerate(self._docs):
            for t, tf in d.counts.items():
                idf = bm25_idf[t]
                self._postings.setdefault(t, (self._idf[t] ** 2, []))[1].append(
                    (i, tf, idf * tf * (_K1 + 1) / (tf + norm[i])))
        self._vocab: ahocorasick.Automaton | None = None
        if df:
            automaton = ahocorasick.Automaton()
            for t in df:
                automaton.add_word(t, t)
            automaton.make_automaton()
            self._vocab = automaton

    def _weight(self, token: str) -> float:
        return self._idf.get(token, self._unknown_idf)

    def _confidence(self, cosine: float, q_grams: Counter[str], q_total: int, i: int) -> float:
        doc = self._docs[i]
        return _COSINE_SHARE * cosine + _DICE_SHARE * _dice(q_grams, q_total, doc.grams,
                                                             doc.gram_total)

    def _bm25(self, q_tokens: Counter[str]) -> tuple[dict[int, float], dict[int, float]]:
        """BM25 score and the cosine's dot product (Σ idf² · shared count) of every phrasing
        sharing a word with the question, in one walk over the postings."""
        scores: dict[int, float] = {}
        dots: dict[int, float] = {}
        postings = self._postings
        for t, c in q_tokens.items():
            if t not in postings:
                continue
            idf_sq, docs = postings[t]
            for i, tf, term in docs:
                scores[i] = scores.get(i, 0.0) + term
                dots[i] = dots.get(i, 0.0) + idf_sq * (c if c < tf else tf)
        return scores, dots

    def match(self, text: str) -> FaqMatch | None:
        """The FAQ this question asks, or None when no answer is confident enough."""
        key = flat(text)
        if not key:
            return None
        exact = self._exact.get(key)
        if exact is not None:
            return FaqMatch(exact.id, 1.0, "exact", text)
        for entry, words in self._contains:
            if any(w in key for w in words):
                return FaqMatch(entry.id, 1.0, "contains")
        head = text[:MAX_REGEX_TEXT]
        for entry, pattern in self._regex:
            if pattern.search(head):  # type: ignore[attr-defined]
                return FaqMatch(entry.id, 1.0, "regex")
        return self._fuzzy(key, text)

    def _fuzzy(self, key: str, text: str) -> FaqMatch | None:
        if self._vocab is None or len(key) < 2:
            return None
        if next(self._vocab.iter(key), None) is None:
            return None  # shares no word with any phrasing: cannot score
        tokens = tokenize(text)
        if not tokens:
            return None
        q_tokens = Counter(tokens)
        scores, dots = self._bm25(q_tokens)  # only phrasings sharing a word
        if not scores:
            return None
        ranked = sorted(scores, key=lambda i: -scores[i])[:8]
        q_norm = math.sqrt(sum((self._weight(t) * c) ** 2 for t, c in q_tokens.items()))
        if not q_norm:
            return None
        # a phrasing whose confidence cannot reach min_score - min_margin even with a perfect
        # bigram overlap can be neither the answer nor a runner-up close enough to veto it,
        # so its bigrams are not compared — and when no phrasing is left (most non-questions)
        # the question's own bigrams are never counted
        floor = self.min_score - self.min_margin - _DICE_SHARE
        norms = self._doc_norm
        near = [(i, cosine) for i in ranked
                if norms[i] and _COSINE_SHARE * (cosine := dots[i] / (q_norm * norms[i])) >= floor]
        if not near:
            return None
        q_grams = _bigrams(key)
        q_total = sum(q_grams.values())
        best: dict[str, tuple[float, str]] = {}
        for i, cosine in near:
            doc = self._docs[i]
            conf = self._confidence(cosine, q_grams, q_total, i)
            if conf > best.get(doc.entry.id, (-1.0, ""))[0]:
                best[doc.entry.id] = (conf, doc.question)
        if not best:
            return None
        order = sorted(best.items(), key=lambda kv: -kv[1][0])
        top_id, (top, question) = order[0]
        runner = order[1][1][0] if len(order) > 1 else 0.0
        if top < self.min_score or top - runner < self.min_margin:
            return None
        return FaqMatch(top_id, top, "fuzzy", question)
