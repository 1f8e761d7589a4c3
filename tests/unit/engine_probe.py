"""Run the engine over seeded messages and print every outcome as JSON lines.

``test_native`` runs this twice, on the compiled engine and with ``QUNYUN_PURE=1``, and
requires the same lines: the build must not change a single verdict, score or action.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime, timedelta

from qunyun import native
from qunyun.adapters.platforms.sandbox.simulate import DEFAULT_ADS, DEFAULT_TALK, TAILS
from qunyun.domain.automation import AutomationSettings
from qunyun.domain.events import ChatRef, MemberJoined, MessagePosted, PersonRef
from qunyun.domain.text import flat
from qunyun.engine import GroupFacts, MemberFacts, RuleContext, evaluate
from qunyun.engine.automation import AutomationSnapshot, FaqAnswer
from qunyun.engine.faq import FaqEntry, FaqIndex
from qunyun.engine.moderation import Classifier, WordList, seed_samples
from qunyun.engine.rule import ActivityFacts, CheckinFacts
from qunyun.engine.rules import default_rules

QUESTIONS = [p + a for p in ("沙发", "窗帘", "床垫")
             for a in ("什么时候发货", "可以退吗", "价格多少")]


def texts(rng: random.Random, n: int) -> list[str]:
    pool = [*DEFAULT_TALK, *DEFAULT_ADS, *QUESTIONS, "打卡", "今日打卡", "签到",
            *(t for t, _spam in seed_samples())]
    out = [*pool]
    for _ in range(n):
        r = rng.random()
        if r < 0.6:
            out.append(rng.choice(pool) + rng.choice(TAILS) + rng.choice(TAILS))
        else:  # noise: CJK, full-width, digits, letters, emoji and separators
            out.append("".join(rng.choice("加微信ｖｘ薇１３８0123456789 -.·aZ😀？?群規【】")
                               for _ in range(rng.randint(0, 40))))
    return out


def main() -> None:
    rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
    settings = AutomationSettings.model_validate({
        "moderation": {"enabled": True}, "faq": {"enabled": True},
        "checkin": {"enabled": True}, "points": {"enabled": True},
        "welcome": {"enabled": True}})
    faq = FaqIndex([FaqEntry(id=str(i), questions=(q,)) for i, q in enumerate(QUESTIONS)]
                   + [FaqEntry(id="rules", questions=(), match="contains", pattern="群规|公告")])
    snap = AutomationSnapshot(
        version=1, team=settings, faq=faq,
        classifier=Classifier([WordList("禁", "block", ("违禁品", "赌博")),
                               WordList("广告", "review", ("代购", "微商")),
                               WordList("弱", "weak", ("客服", "淘宝"))]),
        answers={e.id: FaqAnswer("答案", 300) for e in faq.entries})
    group = GroupFacts(id=1, name="群1", platform="sandbox",
                       settings={"welcome_template": "欢迎 @{name}"})
    t0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
    chat = ChatRef(external_id="g1")
    rules = default_rules()
    print(json.dumps({"build": native.state.build}))
    for i, text in enumerate(texts(rng, 3000)):
        member = MemberFacts(id=i % 50, number=10000 + i % 50, name=f"成员{i % 50}",
                             first_seen=i % 97 == 0, staff=i % 53 == 0,
                             blacklisted=i % 101 == 0,
                             blacklist_id=i if i % 101 == 0 else None)
        sender = PersonRef(external_id=f"u{i % 50}")
        at = t0 + timedelta(minutes=i)
        event: MessagePosted | MemberJoined
        if i % 211 == 0:
            event = MemberJoined(platform="sandbox", external_event_id=f"j{i}", occurred_at=at,
                                 chat=chat, member=sender)
        else:
            event = MessagePosted(platform="sandbox", external_event_id=str(i), occurred_at=at,
                                  chat=chat, sender=sender, message_id=str(i), text=text,
                                  message_type="qrcode" if i % 89 == 0 else "text")
        late = timedelta(minutes=30 if i % 7 == 0 else 0)  # some events answered too late
        ctx = RuleContext(now=at + late, group=group, member=member, automation=snap,
                          activity=ActivityFacts(recent_messages=12 if i % 41 == 0 else 1,
                                                 own_repeats=4 if i % 43 == 0 else 1,
                                                 crowd_repeats=i % 5,
                                                 member_since=at - timedelta(days=i % 9),
                                                 prior_violations=i % 4),
                          checkin=CheckinFacts(last_day="2026-11-19" if i % 3 else None,
                                               last_streak=i % 5, total=i % 11),
                          points_today=i % 17)
        result = evaluate(event, ctx, rules)
        verdict = snap.classifier.classify(text, strict=i % 2 == 0)
        hit = faq.match(text)
        print(json.dumps({
            "text": text, "flat": flat(text), "fired": result.fired,
            "stopped_by": result.stopped_by, "errors": [e.error for e in result.errors],
            "actions": [f"{name}: {action!r}" for name, action in result.actions],
            "verdict": [verdict.verdict, verdict.score, verdict.reasons, verdict.signals],
            "faq": None if hit is None else [hit.id, hit.score],
        }, ensure_ascii=False))


if __name__ == "__main__":
    main()
