"""Rule-engine throughput (issue 5): messages through ``engine.evaluate`` with moderation
(a 5,000-word list + the ad detector + the learned score), 50 FAQs, check-ins, points and
welcome rules active. Baseline in the same run: a bare pyahocorasick scan of the same texts
over the same 5,000 words (the floor: no rule can be faster than reading every text once).

Texts are generated (seeded) from community talk, the usual questions, check-ins and ads,
with random tails: only ~6,500 distinct texts in 1M (reported as ``distinct_texts``), so
nothing in the engine may cache results across messages, or this bench would flatter it.
The word list is the first 5,000 lines of
../shared/data/sensitive_words_zh/konsheng/Vocabulary/GFW补充词库.txt when present, else
5,000 seeded random 2–4 character words. One process, one core.

Run: ``.venv/bin/python bench/engine_bench.py [-n 1000000] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ahocorasick

from qunyun import native
from qunyun.adapters.platforms.sandbox.simulate import DEFAULT_ADS, DEFAULT_TALK, TAILS
from qunyun.domain.automation import AutomationSettings
from qunyun.domain.events import ChatRef, MessagePosted, PersonRef
from qunyun.engine import GroupFacts, MemberFacts, RuleContext, evaluate
from qunyun.engine.automation import AutomationSnapshot, FaqAnswer
from qunyun.engine.faq import FaqEntry, FaqIndex
from qunyun.engine.moderation import Classifier, WordList
from qunyun.engine.rule import ActivityFacts, CheckinFacts
from qunyun.engine.rules import default_rules

WORDS = (Path(__file__).resolve().parents[2] / "shared" / "data" / "sensitive_words_zh"
         / "konsheng" / "Vocabulary" / "GFW补充词库.txt")
PRODUCTS = ("沙发", "窗帘", "地板", "床垫", "衣柜", "餐桌", "灯具", "瓷砖", "橱柜", "门窗")
ASPECTS = ("什么时候发货", "可以退吗", "有现货吗", "价格多少", "能上门安装吗")


def word_list(rng: random.Random) -> tuple[list[str], str]:
    if WORDS.exists():
        words = [w.strip() for w in WORDS.read_text("utf-8").splitlines() if w.strip()]
        return words[:5000], WORDS.name
    return (["".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(2, 4)))
             for _ in range(5000)], "5,000 random words")


def texts(n: int, rng: random.Random) -> list[str]:
    questions = [p + a for p in PRODUCTS for a in ASPECTS]
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.70:
            base = rng.choice(DEFAULT_TALK)
        elif r < 0.85:
            base = rng.choice(questions)
        elif r < 0.95:
            base = rng.choice(("打卡", "今日打卡", "签到"))
        else:
            base = rng.choice(DEFAULT_ADS)
        out.append(base + rng.choice(TAILS) + rng.choice(TAILS))
    return out


def snapshot(words: list[str]) -> AutomationSnapshot:
    settings = AutomationSettings.model_validate({
        "moderation": {"enabled": True}, "faq": {"enabled": True},
        "checkin": {"enabled": True}, "points": {"enabled": True},
        "welcome": {"enabled": True}})
    entries = [FaqEntry(id=str(i), questions=(p + a,)) for i, (p, a) in
               enumerate((p, a) for p in PRODUCTS for a in ASPECTS)]
    return AutomationSnapshot(
        version=1, team=settings, classifier=Classifier([WordList("bench", "review",
                                                                  tuple(words))]),
        faq=FaqIndex(entries), answers={e.id: FaqAnswer("答案", 300) for e in entries})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rng = random.Random(5)
    words, source = word_list(rng)
    corpus = texts(args.n, rng)
    snap = snapshot(words)
    rules = default_rules()
    group = GroupFacts(id=1, name="群1", platform="sandbox",
                       settings={"welcome_template": "欢迎 @{name}"})
    member = MemberFacts(id=7, number=10007, name="张三")
    t0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
    chat, sender = ChatRef(external_id="g1"), PersonRef(external_id="u7")

    # floor: one Aho-Corasick pass over each text, same words
    automaton = ahocorasick.Automaton()
    for w in words:
        automaton.add_word(w, w)
    automaton.make_automaton()
    started = time.perf_counter()
    hits = 0
    for text in corpus:
        for _ in automaton.iter(text):
            hits += 1
    floor = time.perf_counter() - started

    started = time.perf_counter()
    fired: dict[str, int] = {}
    for i, text in enumerate(corpus):
        event = MessagePosted(platform="sandbox", external_event_id=str(i),
                              occurred_at=t0 + timedelta(seconds=i), chat=chat, sender=sender,
                              message_id=str(i), text=text)
        ctx = RuleContext(now=event.occurred_at, group=group, member=member, automation=snap,
                          activity=ActivityFacts(), checkin=CheckinFacts())
        result = evaluate(event, ctx, rules)
        for name in result.fired:
            fired[name] = fired.get(name, 0) + 1
    engine = time.perf_counter() - started
    out = {
        "messages": args.n, "distinct_texts": len(set(corpus)), "words": len(words),
        "word_source": source, "faqs": 50,
        "floor_seconds": round(floor, 3), "floor_msgs_per_s": round(args.n / floor),
        "engine_seconds": round(engine, 3), "engine_msgs_per_s": round(args.n / engine),
        "ratio_to_floor": round(engine / floor, 1), "fired": fired, "floor_hits": hits,
        "engine_build": native.state.build,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
    }
    print(json.dumps(out, ensure_ascii=False, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
