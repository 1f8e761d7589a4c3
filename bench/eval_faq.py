"""Evaluate FAQ matching on real question pairs (issue 5): ../shared/data/faq_matching_zh.

Protocol: each data set's pairs are shuffled (fixed seed) and cut into batches of 100 pairs,
a typical FAQ size. In each batch the first question of every pair becomes an FAQ entry; the
second question is asked. For a same-intent pair the right answer is its own entry; for a
different-intent pair (the data sets' negatives are lexically close on purpose) any answer
is a false trigger. Every pair of every file is used once.

Reports, per data set: precision@1 (right answers / answers given to same-intent questions),
coverage (share of same-intent questions answered at all) and the false-trigger rate on
different-intent questions, at the default thresholds and over a sweep of ``min_score``.
Run: ``.venv/bin/python bench/eval_faq.py [--json FILE] [--limit N]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path

from qunyun.engine.faq import FaqEntry, FaqIndex

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "faq_matching_zh"
BATCH = 100


def pairs() -> dict[str, list[tuple[str, str, bool]]]:
    out: dict[str, list[tuple[str, str, bool]]] = {}
    rows = []
    for line in (DATA / "LCQMC" / "dev.txt").read_text("utf-8").splitlines():
        p = line.split("\t")
        if len(p) == 3:
            rows.append((p[0], p[1], p[2].strip() == "1"))
    out["LCQMC"] = rows
    with (DATA / "BQ_corpus" / "dev.csv").open(encoding="utf-8-sig") as fh:
        out["BQ"] = [(r["sentence1"], r["sentence2"], r["label"].strip() == "1")
                     for r in csv.DictReader(fh)]
    rows = []
    for line in (DATA / "ATEC" / "atec_nlp_sim_train.csv").read_text("utf-8-sig").splitlines():
        p = line.replace("\ufeff", "").split("\t")
        if len(p) == 4:
            rows.append((p[1], p[2], p[3].strip() == "1"))
    out["ATEC"] = rows
    return out


def run(rows: list[tuple[str, str, bool]], sweep: list[float]) -> dict[str, dict[str, float]]:
    """Scores every question once, then applies each threshold (margin fixed)."""
    rng = random.Random(42)
    rows = rows[:]
    rng.shuffle(rows)
    outcomes: list[tuple[bool, str | None, str, float]] = []  # positive, match, own, score
    for start in range(0, len(rows), BATCH):
        batch = rows[start:start + BATCH]
        entries = [FaqEntry(id=str(i), questions=(q1,)) for i, (q1, _q2, _l) in enumerate(batch)]
        index = FaqIndex(entries, min_score=0.0)
        for i, (_q1, q2, label) in enumerate(batch):
            m = index.match(q2)
            outcomes.append((label, m.id if m else None, str(i), m.score if m else 0.0))
    result = {}
    for threshold in sweep:
        answered = right = pos = neg = false_trig = 0
        for label, match, own, score in outcomes:
            hit = match is not None and score >= threshold
            if label:
                pos += 1
                answered += hit
                right += hit and match == own
            else:
                neg += 1
                false_trig += hit
        result[f"{threshold:.2f}"] = {
            "precision_at_1": right / answered if answered else 0.0,
            "coverage": answered / pos if pos else 0.0,
            "false_trigger_rate": false_trig / neg if neg else 0.0,
            "positives": pos, "negatives": neg}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="pairs per data set (0 = all)")
    args = parser.parse_args()
    if not DATA.exists():
        print(f"skipped: {DATA} is absent", file=sys.stderr)
        return 0
    default = FaqIndex([]).min_score
    sweep = sorted({0.5, 0.55, 0.6, default, 0.7, 0.75, 0.8})
    out: dict[str, object] = {"default_min_score": default}
    started = time.perf_counter()
    for name, rows in pairs().items():
        out[name] = run(rows[:args.limit] if args.limit else rows, sweep)
        d = out[name][f"{default:.2f}"]  # type: ignore[index]
        print(f"{name}: precision@1 {d['precision_at_1']:.3f}  coverage {d['coverage']:.3f}  "
              f"false triggers {d['false_trigger_rate']:.3f}  "
              f"({d['positives']} same-intent, {d['negatives']} different-intent)")
    out["seconds"] = time.perf_counter() - started
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
