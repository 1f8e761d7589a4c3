"""Evaluate the moderation classifier on real outside data (issue 5).

Recall on ../shared/data/spam_sms_zh (7,028 hand-labelled spam SMS in six classes, plus the
36 spam of the mixed sample) and false positives on real non-spam text: the 271 ham SMS of
the mixed sample and the real user questions of ../shared/data/faq_matching_zh (LCQMC, BQ,
ATEC). Baseline in the same run: a plain substring filter on the 123-word ad list.

The spam corpus masks every digit as ``x``; a phone number ``xxxxxxxxxxx`` is no longer a
phone number. The figures are given both on the raw text and with masked runs restored to
digits (``x`` → ``8``, an 11-long run → ``138…``, where the run is not part of a Latin
word), which is what real messages look like.
The false-positive rate where it matters, in a group: a realistic chat mix (check-ins in
shared words, greetings, agreement, staff promotions, real questions, injected spam) run
through the real rules, against the rules before issue 31 on the same stream
(``bench/chat_mix.py``).
Run: ``.venv/bin/python bench/eval_moderation.py [--json FILE] [--cv]``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

import chat_mix  # bench/ is on the path when run as a script
from eval_faq import pairs

from qunyun.engine.moderation import BigramModel, Classifier, WordList, default_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
_MASK = re.compile(r"(?<![a-wyzA-WYZ])x+(?![a-wyzA-WYZ])")


def unmask(text: str) -> str:
    def digits(m: re.Match[str]) -> str:
        n = len(m.group())
        return "13" + "8" * (n - 2) if n == 11 else "8" * n  # an 11-digit run was a mobile

    return _MASK.sub(digits, text)


def spam_by_class() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path in sorted((DATA / "spam_sms_zh" / "xiaojie16_6class").glob("*.txt")):
        name = path.stem.rsplit("_", 1)[0]
        rows = [line.split("\t", 2) for line in path.read_text("utf-8-sig").splitlines()]
        out[name] = [r[2] for r in rows if len(r) == 3 and r[2].strip()]
    return out


def mixed_sample() -> tuple[list[str], list[str]]:
    spam, ham = [], []
    path = DATA / "spam_sms_zh" / "liaopan_sample" / "train_sample.txt"
    for line in path.read_text("utf-8-sig").splitlines():
        parts = line.split("\t", 2)
        if len(parts) == 3 and parts[1] in {"0", "1"}:
            (spam if parts[1] == "1" else ham).append(parts[2])
    return spam, ham


def questions() -> dict[str, list[str]]:
    """The unique questions of the FAQ evaluation's pairs (real user questions)."""
    return {name: sorted({q for q1, q2, _same in rows for q in (q1, q2) if q.strip()})
            for name, rows in pairs().items()}


def ad_list() -> list[str]:
    path = DATA / "sensitive_words_zh" / "konsheng" / "Vocabulary" / "广告类型.txt"
    return [w.strip() for w in path.read_text("utf-8").splitlines() if w.strip()]


def rates(clf: Classifier, texts: list[str]) -> dict[str, float]:
    verdicts = Counter(clf.classify(t).verdict for t in texts)
    n = len(texts) or 1
    return {"n": len(texts), "block": verdicts["block"] / n, "review": verdicts["review"] / n,
            "flagged": (verdicts["block"] + verdicts["review"]) / n}


def baseline(words: list[str], texts: list[str]) -> float:
    low = [w.lower() for w in words]
    return sum(any(w in t.lower() for w in low) for t in texts) / (len(texts) or 1)


def cross_validated(spam: list[str], ham: list[str], folds: int = 5) -> dict[str, float]:
    """What the learned score reaches when trained on an operator's own labelled messages:
    k-fold over spam SMS + real questions (never the shipped model)."""
    rng = random.Random(7)
    s, h = spam[:], ham[:]
    rng.shuffle(s)
    rng.shuffle(h)
    caught = flagged = 0
    for k in range(folds):
        train = [(t, True) for i, t in enumerate(s) if i % folds != k] + \
                [(t, False) for i, t in enumerate(h) if i % folds != k]
        clf = Classifier(model=BigramModel().train(train))
        caught += sum(clf.classify(t).verdict != "ok" for i, t in enumerate(s) if i % folds == k)
        flagged += sum(clf.classify(t).verdict != "ok" for i, t in enumerate(h) if i % folds == k)
    return {"spam_recall": caught / len(s), "ham_flagged": flagged / len(h)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--with-ad-list", action="store_true",
                        help="also load the 123-word ad list as a weak list")
    parser.add_argument("--cv", action="store_true", help="also run the 5-fold learned score")
    args = parser.parse_args()
    if not (DATA / "spam_sms_zh").exists():
        print(f"skipped: {DATA} is absent", file=sys.stderr)
        return 0
    lists = [WordList("广告词", "weak", tuple(ad_list()))] if args.with_ad_list else []
    clf = Classifier(lists, model=default_model())
    classes = spam_by_class()
    mixed_spam, mixed_ham = mixed_sample()
    qs = questions()
    all_spam = [t for v in classes.values() for t in v] + mixed_spam
    all_q = [q for v in qs.values() for q in v]
    started = time.perf_counter()
    result: dict[str, object] = {"spam": {}, "spam_unmasked": {}, "ham": {}}
    for name, texts in classes.items():
        result["spam"][name] = rates(clf, texts)  # type: ignore[index]
        result["spam_unmasked"][name] = rates(clf, [unmask(t) for t in texts])  # type: ignore[index]
    result["spam_total"] = rates(clf, all_spam)
    result["spam_total_unmasked"] = rates(clf, [unmask(t) for t in all_spam])
    result["ham"]["sms_ham"] = rates(clf, mixed_ham)  # type: ignore[index]
    for name, texts in qs.items():
        result["ham"][name] = rates(clf, texts)  # type: ignore[index]
    result["questions_total"] = rates(clf, all_q)
    elapsed = time.perf_counter() - started
    n_texts = 2 * len(all_spam) + len(mixed_ham) + 2 * len(all_q)
    result["msgs_per_s"] = n_texts / elapsed
    words = ad_list()
    result["baseline_ad_list"] = {"spam_recall": baseline(words, all_spam),
                                  "questions_flagged": baseline(words, all_q)}
    if args.cv:
        result["cv_learned"] = cross_validated([unmask(t) for t in all_spam],
                                               all_q[::7] + mixed_ham)
    # what moderation does in groups, through the real rules: check-ins in shared words,
    # greetings, 好的/收到/+1, staff promotions (bench/chat_mix.py)
    result["chat_mix"] = chat_mix.evaluate(DATA)
    print(json.dumps(result, ensure_ascii=False, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
