"""Demo data for seed 000 part 2: the check-in series X (three issues), Y (two) and Z (two).

Shaped like the seed: X1 has 177 paying participants, all in one group; about a third of them
renew into X2; X3 has 160 new people and 170 who took part before (X3 also draws Y's people);
47 % of X1's people are still active in its group afterwards, and a few leave. People join an
issue's group through the sandbox adapter (the real event path); enrolments, check-ins and
orders go through the activity and check-in services. Deterministic for a given seed.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from qunyun.bootstrap import Runtime
from qunyun.services import activities, conversions, enrolments, settlements
from qunyun.services.checkins import store_checkins_many
from qunyun.services.ingest import do_ingest_event
from qunyun.services.users import SYSTEM

PLATFORM = "sandbox"
DAYS = 7  # a one-week check-in camp
# code, series, weeks before now it starts, new people, {earlier issue: people from it}
PLAN: list[tuple[str, str, int, int, dict[str, int]]] = [
    ("X1", "X", 13, 177, {}),
    ("Y1", "Y", 11, 110, {"X1": 40}),
    ("X2", "X", 9, 90, {"X1": 60, "Y1": 20}),
    ("Z1", "Z", 7, 70, {"X1": 30, "X2": 20, "Y1": 20}),
    ("Y2", "Y", 5, 50, {"Y1": 50, "X2": 20}),
    ("X3", "X", 3, 160, {"X1": 40, "X2": 50, "Y1": 35, "Y2": 25, "Z1": 20}),
    ("Z2", "Z", 0, 60, {"Z1": 40, "X3": 30}),  # running now
]
SERIES = {"X": "21天英语打卡", "Y": "亲子阅读营", "Z": "口语直播课"}


def load_series(conn: Connection, runtime: Runtime, now: datetime, seed: int = 11) -> None:
    rng = random.Random(seed)
    tz = runtime.settings.tz
    adapter = runtime.adapters[PLATFORM]
    counter = iter(range(10**9))

    def ingest(raw: dict[str, Any]) -> Any:
        result = None
        for ev in adapter.parse(raw).events:
            result = do_ingest_event(conn, ev, config=runtime.ingest_config, received_at=now)
        return result

    def stamp(t: datetime) -> str:
        return t.astimezone(tz).isoformat()

    today = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    for code, name in SERIES.items():
        activities.do_create_series(conn, actor=SYSTEM, code=code, name=name)
    people: dict[str, list[str]] = {}
    next_person = iter(range(1, 10**6))
    for code, series, weeks, new, sources in PLAN:
        start = today - timedelta(weeks=weeks)
        end = start + timedelta(days=DAYS - 1)
        crowd = [f"act-u{next(next_person)}" for _ in range(new)]
        for earlier, n in sources.items():
            pool = [p for p in people[earlier] if p not in crowd]
            crowd += rng.sample(pool, k=min(n, len(pool)))
        people[code] = crowd
        chat = f"act-{code}"
        group_id = None
        member_of: dict[str, int] = {}
        for k, uid in enumerate(crowd):
            joined = start - timedelta(days=3) + timedelta(minutes=7 * k)
            result = ingest({"type": "join", "id": f"act-j{next(counter)}", "at": stamp(joined),
                             "chat": chat, "chat_name": f"{code} {SERIES[series]}群",
                             "user": uid, "user_name": f"学员{uid[5:]}", "scene": "qr",
                             "channel": rng.choice(["公众号", "老用户召回", "朋友推荐"])})
            group_id, member_of[uid] = result.group_id, result.member_id
        assert group_id is not None
        finished = end < today
        activity_id = activities.do_create_activity(
            conn, actor=SYSTEM, series=series, starts_on=start.date(), ends_on=end.date(),
            group_ids=[group_id], deposit_fen=9900, refund_tiers="7:100,5:50",
            capacity=400, reach={"公众号": 3 * len(crowd), "老用户召回": len(crowd)},
            targets={"joined": 350, "enrolled": 330, "deposit": 330, "purchase": 20},
            state="ended" if finished else "running")
        enrolments.do_enrol_many(conn, actor=SYSTEM, activity_id=activity_id, source="demo",
                                 member_ids=[member_of[u] for u in crowd],
                                 at=start - timedelta(days=2))
        made = []
        for member_id in member_of.values():
            diligence = rng.random()
            for d in range(DAYS):
                day = start + timedelta(days=d)
                if day < today and rng.random() < 0.35 + 0.6 * diligence:
                    made.append((member_id, day.date(),
                                 day + timedelta(hours=7, minutes=rng.randint(0, 120))))
        store_checkins_many(conn, group_id=group_id, rows=made, source="form")
        _during(ingest, random.Random(f"{seed}-{code}"), chat, crowd, start, today, counter,
                stamp)
        if finished:
            _after(ingest, rng, code, chat, crowd, end, today, counter, stamp)
            settlements.do_settle(conn, actor=SYSTEM, activity_id=activity_id)
        for uid in rng.sample(crowd, k=len(crowd) // 16):
            conversions.do_record_conversion(
                conn, actor=SYSTEM, kind="order", amount_fen=199900, activity_id=activity_id,
                member_id=member_of[uid], at=start + timedelta(days=DAYS),
                external_ref=f"demo-{code}-{uid}")
        conversions.do_record_conversion(conn, actor=SYSTEM, kind="cost", amount_fen=80000,
                                        activity_id=activity_id, note="公众号投放",
                                        at=start - timedelta(days=7))


TALK_DURING = ("老师今天的作业在哪里看？", "收到", "今天的打卡图发好了", "坚持第三天了💪",
               "请问回放什么时候有？", "谢谢老师讲得很清楚", "孩子今天读得很认真")


def _during(ingest: Any, rng: random.Random, chat: str, crowd: list[str], start: datetime,
            today: datetime, counter: Any, stamp: Any) -> None:
    """During an issue about half the members talk in its group (questions, thanks, their
    check-in pictures): the funnel's 发言 step has people in it, as a real camp does. Its
    own random stream, so the rest of the demo stays as it was."""
    days = [d for d in range(DAYS) if start + timedelta(days=d) < today]
    if not days:
        return
    for uid in crowd:
        if rng.random() < 0.55:
            for _ in range(rng.randint(1, 2)):
                when = start + timedelta(days=rng.choice(days), hours=9,
                                         minutes=rng.randint(0, 720))
                ingest({"type": "message", "id": f"act-m{next(counter)}", "at": stamp(when),
                        "chat": chat, "user": uid, "message_id": f"act-m{next(counter)}",
                        "text": rng.choice(TALK_DURING)})


def _after(ingest: Any, rng: random.Random, code: str, chat: str, crowd: list[str],
           end: datetime, today: datetime, counter: Any, stamp: Any) -> None:
    """After an issue: 47 % keep talking in its group (X1, as in the seed), some leave."""
    active_share = 0.47 if code == "X1" else 0.3
    for uid in crowd:
        roll = rng.random()
        when = end + timedelta(days=rng.randint(2, 14), hours=20)
        if when >= today:
            continue
        if roll < active_share:
            ingest({"type": "message", "id": f"act-m{next(counter)}", "at": stamp(when),
                    "chat": chat, "user": uid, "message_id": f"act-m{next(counter)}",
                    "text": rng.choice(["今天的内容打卡了", "下一期什么时候开？", "谢谢老师"])})
        elif roll > 0.9:
            ingest({"type": "leave", "id": f"act-l{next(counter)}", "at": stamp(when),
                    "chat": chat, "user": uid})
