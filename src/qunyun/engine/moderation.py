"""Moderation classifier (F13): word lists, an ad detector and a learned text score.

``Classifier.classify(text)`` → :class:`Verdict` (``ok`` | ``review`` | ``block``, a score in
[0, 1] and the reasons). Pure and fast (one Aho-Corasick pass, a few regexes, a bigram
lookup): it runs on every group message.

Why three parts: a plain ad word list catches ~9 % of real spam and flags ~2 % of ordinary
questions (its words — 招聘, 客服, 淘宝 — are everyday words). So list hits on generic ad words
only add weight; what decides is the *combination* of signals an advertiser cannot avoid:
a way to reach them (phone, WeChat id and its disguises 加V / vx / 薇, QR code, link) plus a
lure (money, loans, jobs, discounts). A character-bigram naive-Bayes score, trained on a small
seed corpus written for this project plus the operators' own review decisions, covers the
wording the patterns miss. Lists marked ``block`` (e.g. banned political or porn terms)
block on their own.

One module on purpose: compiled by mypyc as a unit, its word lists, detector and score
are one classifier.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import import_module, resources
from typing import Any, Literal

import ahocorasick

from qunyun.domain.text import flat, normalize

Severity = Literal["block", "review", "weak"]
SEVERITIES: tuple[str, ...] = ("block", "review", "weak")
VERDICTS: tuple[str, ...] = ("ok", "review", "block")

# weight of one hit, by list severity (log-odds units; the bias is -3)
_LIST_WEIGHT = {"block": 9.0, "review": 3.5, "weak": 0.8}


@dataclass(frozen=True, slots=True)
class WordList:
    name: str
    severity: Severity
    words: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Verdict:
    verdict: str
    score: float
    reasons: tuple[str, ...]
    signals: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"verdict": self.verdict, "score": round(self.score, 4),
                "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Score cut-offs; new members get ``strict_shift`` subtracted from both."""

    block: float = 0.85
    review: float = 0.5
    strict_shift: float = 0.2


# --- the ad detector's patterns (on normalised text) --------------------------------------

_DIGITS_JOIN = re.compile(r"(?<=\d)[\s\-_.·]+(?=\d)")
_CN_DIGITS = "零〇一二三四五六七八九幺壹贰叁肆伍陆柒捌玖两"
_CONTACT_WORD = (r"(?:v|vx|wx|wechat|weixin|微信|薇信|威信|徽信|维信|卫星|v信|薇|微|"
                 r"q|qq|扣扣|企鹅|tg|telegram|飞机)")


@dataclass(frozen=True, slots=True)
class _Signal:
    name: str
    reason: str
    weight: float
    pattern: re.Pattern[str]
    kind: str  # contact | lure | other
    on_digits: bool = False  # match against the text with digit separators removed


def _p(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_SIGNALS: tuple[_Signal, ...] = (
    _Signal("link", "含链接", 2.6, _p(  # t.me/…: Telegram's links, its spam's usual kind
        r"https?://|www\.|t\.me/|telegram\.(?:me|dog)/|tg://|"
        r"\b[a-z0-9-]{2,}\.(?:com|cn|net|org|top|xyz|vip|cc|me|io|co|info|"
        r"shop|club|site|online|ltd|ly)\b"), "contact"),
    _Signal("mobile", "含手机号", 2.4, _p(r"(?<![\dx])1[3-9]\d{9}(?![\dx])"), "contact",
            on_digits=True),
    _Signal("hotline", "含电话号码", 2.0,  # a mobile number is counted once, as a mobile
            _p(r"(?<![\d.])(?!1[3-9]\d{9}(?!\d))\d{7,12}(?![\d.])"), "contact",
            on_digits=True),
    _Signal("spelled_number", "用汉字写的号码", 2.2, _p(f"[{_CN_DIGITS}]{{7,}}"), "contact"),
    _Signal("wechat_id", "含微信/QQ号", 2.8, _p(
        _CONTACT_WORD + r"\s*(?:号|同号)?\s*[:：]?\s*[a-z][a-z0-9_\-]{5,19}|"
        r"(?:qq|扣扣|q)\s*[:：]?\s*\d{5,11}"), "contact", on_digits=True),
    _Signal("contact_lure", "引导加好友/私聊", 1.6, _p(
        r"(?:加|\+|➕|添加|联系)\s*" + _CONTACT_WORD + r"|私聊|私信|私我|加我|加好友|点我头像|"
        r"看头像|备注来意|同号|联系电话|联系方式|咨询电话|热线|欢迎致电|欢迎来电|感谢致电|"
        r"电话联系|预约电话|扫码|二维码"), "contact"),
    _Signal("money_lure", "高收益/赚钱诱导", 1.6, _p(
        r"日赚|日入|月入|日结|躺赚|稳赚|轻松赚|赚钱|高回报|零投资|回本|收益|分红|佣金|返利|返现|"
        r"提成|高薪|底薪|彩金|上分|下分|带单|跟单|内幕"), "lure"),
    _Signal("loan", "贷款/套现", 1.4, _p(
        r"贷款|网贷|借贷|放款|下款|无抵押|免担保|套现|提额|征信|黑户|秒批|秒到|利息低|低息|"
        r"资金周转"), "lure"),
    _Signal("job", "兼职/招聘", 1.2, _p(
        r"兼职|刷单|招聘|诚聘|急招|招募|打字员|宝妈|学生党|在家(?:办公|就能|赚)|手机操作|"
        r"代理|加盟|合伙人"), "lure"),
    _Signal("promo", "促销用语", 1.1, _p(
        r"优惠|特价|特惠|折扣|\d+(?:\.\d+)?折|[一二三四五六七八九]折|限时|抢购|促销|秒杀|"
        r"免费领|领取|包邮|详询|惠顾|店庆|开业|酬宾|活动价|立减|立省|全场|原价|清仓|批发|"
        r"厂家直销|一件代发|名额有限|先到先得|退订|回td"), "lure"),
    _Signal("bank_transfer", "转账/银行卡", 1.2, _p(
        r"银行卡号|卡号|户名|开户行|安全账户|汇款|打款|转入"), "lure"),
    _Signal("card_number", "含银行卡号", 2.2, _p(r"(?<!\d)\d{16,19}(?!\d)"), "contact",
            on_digits=True),
    _Signal("merchant_voice", "商家口吻", 1.4, _p(
        r"本公司|本店|我司|我们公司|竭诚|为您服务|为您提供|欢迎(?:新老)?(?:客户|顾客|光临|惠顾|"
        r"咨询|订购)|有需要的?(?:朋友|可以|请|联系)|专业(?:从事|办理|做|提供)|主营|诚信|敬请|"
        r"尊敬的|亲爱的(?:顾客|会员|家长|业主|朋友)|本人(?:有|出售|承接|专业)|承接|出售|转让|"
        r"长期(?:收购|有效|供应)|回收"), "lure"),
    _Signal("signature", "短信签名【…】", 0.9, _p(r"【[^】]{2,14}】|\[[^\]]{2,14}\]$"), "other"),
    _Signal("money_amount", "金额", 0.5, _p(r"[¥￥$]\s*\d|\d\s*(?:元|块|万|w)(?![a-z])"),
            "other"),
)


class _Unknown(Exception):
    """A pattern construct :func:`_first_chars` does not follow."""


def _first_chars(pattern: re.Pattern[str]) -> re.Pattern[str] | None:
    """A character class of every character a match of ``pattern`` can begin with, read off
    its parse tree, or None when the tree holds something this does not follow.

    A long alternation is slow to search because ``re`` tries every branch at every position;
    a class is one C scan. A match must begin at one of these characters, so the alternation
    need only be tried from the first of them on, and not at all when there is none (about a
    quarter of ordinary talk). Falling back to None only costs that speed.
    """
    sre = import_module("re._constants")  # private modules: typed as plain modules
    parser = import_module("re._parser")
    chars: set[str] = set()
    categories: set[str] = set()
    known_categories = {sre.CATEGORY_DIGIT: r"\d", sre.CATEGORY_SPACE: r"\s",
                        sre.CATEGORY_WORD: r"\w"}

    def add(code: int) -> None:
        chars.add(chr(code))

    def seq(items: Any) -> bool:
        """Add the first characters of a sequence; True when it can match empty."""
        return all(op_(op, av) for op, av in items)

    def op_(op: Any, av: Any) -> bool:
        if op is sre.LITERAL:
            add(av)
            return False
        if op is sre.IN:
            for o, a in av:
                if o is sre.LITERAL:
                    add(a)
                elif o is sre.RANGE:
                    for code in range(a[0], a[1] + 1):
                        add(code)
                elif o is sre.CATEGORY and a in known_categories:
                    categories.add(known_categories[a])
                else:
                    raise _Unknown
            return False
        if op is sre.SUBPATTERN:
            return seq(av[-1])
        if op is sre.BRANCH:
            return any([seq(alt) for alt in av[1]])  # a list: every branch adds its chars
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            return seq(av[2]) or av[0] == 0
        if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
            return True  # consume nothing: the first character comes after
        raise _Unknown

    try:
        if seq(parser.parse(pattern.pattern, pattern.flags)):
            return None  # can match the empty string: no character is needed
    except _Unknown:
        return None
    return re.compile("[" + "".join(re.escape(c) for c in sorted(chars))
                      + "".join(sorted(categories)) + "]", pattern.flags)  # same case rule


def _can_match(pattern: re.Pattern[str], starts: re.Pattern[str] | None, text: str) -> bool:
    """``pattern.search(text)``, tried only from the first character a match can begin with."""
    if starts is None:
        return pattern.search(text) is not None
    first = starts.search(text)
    return first is not None and pattern.search(text, first.start()) is not None


def _alternatives(pattern: str) -> list[str]:
    """The top-level branches of a pattern's source: ``a|(b|c)|[|]`` → ``a``, ``(b|c)``,
    ``[|]`` (escapes, groups and classes are kept whole)."""
    branches: list[str] = []
    start = depth = i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 1  # the escaped character
        elif c == "[":
            i += 1
            if pattern[i] == "^":
                i += 1
            if pattern[i] == "]":  # a leading ] is a member
                i += 1
            while pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            branches.append(pattern[start:i])
            start = i + 1
        i += 1
    branches.append(pattern[start:])
    return branches


def _literal(branch: str) -> str | None:
    """The text a branch matches when it is plain caseless characters (a Chinese word),
    else None. Case matters: the patterns ignore it, an automaton does not."""
    sre = import_module("re._constants")
    items = import_module("re._parser").parse(branch)
    if not len(items) or any(op is not sre.LITERAL for op, _av in items):
        return None
    word = "".join(chr(av) for _op, av in items)
    return word if word.lower() == word.upper() else None


class _Gate:
    """Whether any of some patterns can match a text, without trying each: their plain-word
    branches (私聊, 日结, 贷款 … most of them) are looked up in one Aho-Corasick pass, and the
    other branches are tried as one alternation from the first character a match can begin
    with. A text the gate turns away has no hit for any pattern; most messages are ordinary
    talk and skip the fifteen scans. (The words alone made the gate ~2× faster than one
    alternation of everything: ``re`` tries every branch at every position.)"""

    def __init__(self, patterns: Sequence[re.Pattern[str]]) -> None:
        flags = {p.flags for p in patterns}
        assert len(flags) == 1, "one alternation needs one set of flags"
        words: list[str] = []
        others: list[str] = []
        for p in patterns:
            for branch in _alternatives(p.pattern):
                word = _literal(branch)
                if word is None:
                    others.append(branch)
                else:
                    words.append(word)
        self.pattern: re.Pattern[str] | None = (
            re.compile("|".join(f"(?:{b})" for b in others), flags.pop()) if others else None)
        self.starts = _first_chars(self.pattern) if self.pattern is not None else None
        self.words: ahocorasick.Automaton | None = None
        if words:
            self.words = ahocorasick.Automaton()
            for word in words:
                self.words.add_word(word, word)
            self.words.make_automaton()

    def __call__(self, text: str) -> bool:
        if self.words is not None:
            for _hit in self.words.iter(text):
                return True
        return self.pattern is not None and _can_match(self.pattern, self.starts, text)


_ON_TEXT = _Gate([s.pattern for s in _SIGNALS if not s.on_digits])
_ON_DIGITS = _Gate([s.pattern for s in _SIGNALS if s.on_digits])

# message types that are ads by themselves or nearly so (as the adapter reports them)
_TYPE_WEIGHT: dict[str, tuple[float, str]] = {
    "qrcode": (4.5, "二维码图片"),
    "card": (2.0, "名片分享"),
    "link": (1.4, "链接卡片"),
    "miniprogram": (1.0, "小程序卡片"),
    # a post forwarded from a channel or another chat (Telegram): the usual raid spam
    "forward": (1.6, "转发的消息"),
}
_BIAS = -3.0
# asking is not advertising: a short question lowers the score
_QUESTION = re.compile(r"[?？]|吗|呢|怎么|如何|为什么|为啥|能不能|可不可以|是不是|多少|哪")
_QUESTION_WEIGHT = -1.2
_QUESTION_MAX_LEN = 40
_COMBO = 1.8  # a contact signal together with a lure
_LONG = 60  # characters; ads run long
_NB_WEIGHT = 0.8
_NB_CLIP = 4.0


def _bigrams(text: str) -> list[str]:
    return [text[i:i + 2] for i in range(len(text) - 1)] or ([text] if text else [])


def _nb_value(known: list[float]) -> float:
    """The learned score from the weights of a text's known bigrams, in text order."""
    if not known:
        return 0.0
    value = sum(known) / len(known) * math.sqrt(len(known))
    return max(-_NB_CLIP, min(_NB_CLIP, value))


@dataclass
class BigramModel:
    """Multinomial naive Bayes over character bigrams of the compact text (Laplace-smoothed).

    ``logodds`` is averaged per bigram and scaled by √n, so one long message does not swamp
    the other signals, then clipped. (The classifier reads the weights with its list words
    in one automaton pass; ``logodds`` is the plain definition it is tested against.)
    """

    spam: Counter[str] = field(default_factory=Counter)
    ham: Counter[str] = field(default_factory=Counter)
    spam_docs: int = 0
    ham_docs: int = 0
    _weights: dict[str, float] = field(default_factory=dict, repr=False)

    def train(self, samples: Iterable[tuple[str, bool]]) -> BigramModel:
        for text, is_spam in samples:
            grams = _bigrams(flat(text))
            if is_spam:
                self.spam.update(grams)
                self.spam_docs += 1
            else:
                self.ham.update(grams)
                self.ham_docs += 1
        self._weights = {}
        return self

    def weights(self) -> dict[str, float]:
        """Gram → log-likelihood ratio (spam over ham), computed once after training."""
        if not self._weights:
            vocab = set(self.spam) | set(self.ham)
            vs, vh = sum(self.spam.values()), sum(self.ham.values())
            n = len(vocab) or 1
            self._weights = {g: math.log((self.spam[g] + 1) / (vs + n))
                             - math.log((self.ham[g] + 1) / (vh + n)) for g in vocab}
        return self._weights

    def logodds(self, compact_text: str) -> float:
        weights = self.weights()
        return _nb_value([w for g in _bigrams(compact_text)
                          if (w := weights.get(g)) is not None])

    @property
    def samples(self) -> int:
        return self.spam_docs + self.ham_docs


def read_seed_corpus(text: str) -> list[tuple[str, bool]]:
    """``label<TAB>text`` lines (``#`` comments); label 1 = spam."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        label, _, body = line.partition("\t")
        if label.strip() in {"0", "1"} and body.strip():
            out.append((body.strip(), label.strip() == "1"))
    return out


@cache
def seed_samples() -> tuple[tuple[str, bool], ...]:
    data = resources.files("qunyun.engine") / "data" / "moderation_seed_zh.tsv"
    return tuple(read_seed_corpus(data.read_text("utf-8")))


def default_model(extra: Iterable[tuple[str, bool]] = ()) -> BigramModel:
    """The seed corpus, plus reviewed decisions (``extra``) when given."""
    return BigramModel().train([*seed_samples(), *extra])


class WordMatcher:
    """All word lists, keyed by the compact normalised form of each word."""

    def __init__(self, lists: Sequence[WordList]) -> None:
        entries: dict[str, list[tuple[str, str]]] = {}
        for wl in lists:
            for word in wl.words:
                key = flat(word)
                if key:
                    entries.setdefault(key, []).append((wl.name, wl.severity))
        self.size = len(entries)
        # compact word → the (list, severity) pairs that hold it
        self.entries = {key: tuple(owners) for key, owners in entries.items()}

    def scan(self, compact_text: str) -> list[tuple[str, str, str]]:
        """(word, list name, severity) for each list word in the text — the plain definition,
        one substring test per word; the classifier finds the same in one automaton pass."""
        return [(w, name, sev) for w, owners in self.entries.items() if w in compact_text
                for name, sev in owners]


class Classifier:
    """Word lists + ad detector + learned score → a verdict with its reasons."""

    def __init__(self, lists: Sequence[WordList] = (), *, model: BigramModel | None = None,
                 thresholds: Thresholds | None = None) -> None:
        self.words = WordMatcher(lists)
        self.model = model if model is not None else default_model()
        self.thresholds = thresholds or Thresholds()
        self._reader: ahocorasick.Automaton | None = None

    def _automaton(self) -> ahocorasick.Automaton:
        """The list words and the model's two-character grams in one automaton, so a message
        is read once for both (two passes cost twice one; ~1 µs a message). A bigram's
        value is its weight; a list word's is (word, owners, its weight as a bigram or
        None). Built on the first message: the lists and the model are fixed by then."""
        if self._reader is None:
            values: dict[str, float | tuple[str, tuple[tuple[str, str], ...], float | None]]
            values = {g: w for g, w in self.model.weights().items() if len(g) == 2}
            for word, owners in self.words.entries.items():
                weight = values.get(word)
                values[word] = (word, owners, weight if isinstance(weight, float) else None)
            reader = ahocorasick.Automaton()
            for key, value in values.items():
                reader.add_word(key, value)
            if values:
                reader.make_automaton()
            self._reader = reader
        return self._reader

    def scan(self, compact_text: str) -> tuple[list[tuple[str, str, str]], float]:
        """(word, list name, severity) for each distinct list word in the text, and the
        learned score — ``WordMatcher.scan`` and ``BigramModel.logodds`` in one pass."""
        if len(compact_text) < 2:  # a one-character text is its own gram (and word)
            owners = self.words.entries.get(compact_text, ())
            return ([(compact_text, name, sev) for name, sev in owners],
                    self.model.logodds(compact_text))
        reader = self._automaton()
        if not len(reader):
            return [], 0.0
        hits = [v for _end, v in reader.iter(compact_text)]
        known = [v for v in hits if v.__class__ is float]
        if len(known) == len(hits):
            return [], _nb_value(known)
        seen: dict[str, tuple[tuple[str, str], ...]] = {}
        known = []
        for v in hits:
            if isinstance(v, float):
                known.append(v)
            else:
                seen[v[0]] = v[1]
                if v[2] is not None:
                    known.append(v[2])
        return ([(w, name, sev) for w, owners in seen.items() for name, sev in owners],
                _nb_value(known))

    def classify(self, text: str, *, message_type: str = "text", strict: bool = False,
                 thresholds: Thresholds | None = None) -> Verdict:
        norm = normalize(text)
        squeezed = flat(text)
        digits = _DIGITS_JOIN.sub("", norm)
        total = _BIAS
        reasons: list[str] = []
        signals: list[str] = []
        blocked_by_list = reviewed_by_list = False
        found, nb = self.scan(squeezed)
        for word, list_name, severity in found:
            total += _LIST_WEIGHT[severity]
            signals.append(f"list:{severity}")
            reasons.append(f"命中词库「{list_name}」: {word}")
            blocked_by_list = blocked_by_list or severity == "block"
            reviewed_by_list = reviewed_by_list or severity == "review"
        contact = lure = False
        on_text = _ON_TEXT(norm)
        on_digits = _ON_DIGITS(digits)
        for sig in _SIGNALS if on_text or on_digits else ():
            if not (on_digits if sig.on_digits else on_text):
                continue
            hits = sig.pattern.findall(digits if sig.on_digits else norm)
            if hits:
                # several distinct terms of one kind weigh more than one, up to double
                total += sig.weight * min(2.0, 1.0 + 0.35 * (len(set(hits)) - 1))
                signals.append(sig.name)
                reasons.append(sig.reason)
                contact = contact or sig.kind == "contact"
                lure = lure or sig.kind == "lure"
        type_weight = _TYPE_WEIGHT.get(message_type)
        if type_weight:
            total += type_weight[0]
            signals.append(f"type:{message_type}")
            reasons.append(type_weight[1])
            contact = True
        if contact and lure:
            total += _COMBO
            reasons.append(_COMBO_REASON)
        if len(squeezed) > _LONG:
            total += 0.6
        elif not contact and _QUESTION.search(norm) and len(squeezed) <= _QUESTION_MAX_LEN:
            total += _QUESTION_WEIGHT
        total += _NB_WEIGHT * nb
        if nb >= 1.5:
            reasons.append(_AD_WORDS_REASON)
        score = 1.0 / (1.0 + math.exp(-total))
        t = thresholds or self.thresholds
        shift = t.strict_shift if strict else 0.0
        if blocked_by_list or score >= t.block - shift:
            verdict = "block"
        elif reviewed_by_list or score >= t.review - shift:
            verdict = "review"  # a word on a review list always asks a person
        else:
            verdict = "ok"
        if strict and verdict != "ok":
            reasons.append(_NEWCOMER_REASON)
        return Verdict(verdict, score, tuple(reasons), tuple(signals))


# What a member is asked to stop doing, by signal: the warning in the group says this,
# never the scores and list names the decision log keeps for staff.
_CONTACT_SIGNALS = frozenset({"link", "mobile", "hotline", "spelled_number", "wechat_id",
                              "contact_lure", "card_number", "type:qrcode", "type:card"})
_PUBLIC: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"list:block"}), "发违规内容"),
    (frozenset({"money_lure", "loan", "job", "promo", "bank_transfer", "merchant_voice",
                "signature", "money_amount", "type:link", "type:miniprogram", "list:review",
                "list:weak", "crowd"}), "发广告"),
    (_CONTACT_SIGNALS, "留联系方式"),
    (frozenset({"flood"}), "刷屏"),
    (frozenset({"repeat"}), "重复发同样的话"),
)


_COMBO_REASON = "联系方式 + 诱导用语"
_AD_WORDS_REASON = "用词像广告"
_NEWCOMER_REASON = "入群不久，按更严的标准"


# signals that are a way to reach someone (a link, a number, an account): in a member's name
# they make an advertiser of a newcomer who has not said a word yet
CONTACT_SIGNALS: frozenset[str] = frozenset(s.name for s in _SIGNALS if s.kind == "contact")


def fixed_reasons() -> dict[str, str]:
    """Each reason the classifier writes word for word, with a code naming it (what a page
    in another language translates)."""
    return {**{s.reason: s.name for s in _SIGNALS},
            **{text: f"type_{kind}" for kind, (_w, text) in _TYPE_WEIGHT.items()},
            _COMBO_REASON: "contact_and_lure", _AD_WORDS_REASON: "ad_words",
            _NEWCOMER_REASON: "newcomer"}


def public_reason(signals: Iterable[str]) -> str:
    """What to stop doing, in plain words for the group (``发广告、刷屏``)."""
    have = set(signals)
    said = [text for names, text in _PUBLIC if have & names]
    return "、".join(said) if said else "发广告"


# signals that are about how someone posts, not what: flooding is no ad
_BEHAVIOUR_SIGNALS = frozenset({"flood", "repeat"})


def is_ad(verdict: str, signals: Iterable[str]) -> bool:
    """A blocked message whose own content (not only its flooding) made it one."""
    return verdict == "block" and any(s not in _BEHAVIOUR_SIGNALS for s in signals)


@lru_cache(maxsize=32)
def thresholds(block: float, review: float, strict_shift: float) -> Thresholds:
    """One Thresholds per distinct setting, not one per message."""
    return Thresholds(block=block, review=review, strict_shift=strict_shift)
