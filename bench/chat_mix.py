"""A realistic group-chat mix for moderation's false-positive rate (issue 31).

Classifier figures on spam SMS and bank questions say little about what happens in a group:
there, thirty students post 今天的内容打卡了 within ten minutes, everybody says 好的 / 收到 /
+1, newcomers say hello together, and the group's own staff post promotions that read
exactly like ads. This builds such a stream (seeded), labelled line by line, and runs it
through the real event path (sandbox adapter → ingest → rules) on a throwaway SQLite
database with moderation, check-ins and points on, as an operator would leave them.

Three groups over four weeks: a check-in class (40 students), a launch group (60 home
owners, questions taken from real user questions when ../shared/data is present), an agent
group (staff promotions, agents' replies). Advertisers join now and then and post real
spam (unmasked from the SMS corpus when present, else a few written here).

Baseline in the same run, on the same stream: the rules as they were before issue 31
(session 13), emulated line by line with the same classifier: the same text counted as a
repeat across the whole group, the owner and staff moderated like anyone, check-ins judged
by moderation first.
"""

from __future__ import annotations

import random
import tempfile
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from qunyun.adapters.platforms.sandbox import SandboxAdapter
from qunyun.adapters.platforms.sandbox.send import SandboxStore
from qunyun.adapters.storage import migrate
from qunyun.adapters.storage.db import make_engine
from qunyun.adapters.storage.tables import identities, moderation_decisions
from qunyun.bootstrap import build_runtime
from qunyun.config import Settings
from qunyun.engine.moderation import Classifier
from qunyun.services import automation
from qunyun.services.ingest import do_ingest_event
from qunyun.services.users import SYSTEM

CHECKINS = ("今天的内容打卡了", "今天的内容打卡了", "今天的内容打卡了", "打卡", "打卡✅",
            "Day{d} 打卡", "已打卡", "今日打卡完成")
GREETINGS = ("大家好", "早上好", "晚上好☀️", "新人报到", "大家好，请多关照", "哈喽")
AGREEMENT = ("好的", "收到", "+1", "1", "好的好的", "收到👍", "嗯嗯", "谢谢老师", "明白了",
             "好的，谢谢", "收到，谢谢群主")
CHITCHAT = ("哈哈哈", "支持！", "我也想要", "已报名", "已转发朋友圈", "今晚几点开始？",
            "我家是三居室，推荐哪款？", "地板有样品可以看吗", "窗帘可以上门量尺寸吗",
            "这周末有空去样板间看看", "楼上邻居装修好吵", "有没有推荐的装修队？")
PROMOS = ("新品到货！夏季款特价198，需要的联系 13812345678",
          "今晚直播有优惠，有需要的可以私聊我",
          "代理拿货价表已更新：https://brand.example.cn/price 欢迎咨询",
          "【品牌通知】本周下单满3件包邮，名额有限，先到先得",
          "加我微信 brand_xiaolin 拉你进新品体验群",
          "今晚8点直播间秒杀，限时特价，错过等一年")
ADS = ("招兼职刷单，日结300，加V：abc12345",
       "低息贷款当天放款，不看征信，联系电话 13987654321",
       "本店新品全场五折，扫码进店领券 www.shop-example.cn",
       "想赚钱的加我微信 money_8888，带你躺赚")
BASE = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # Monday 08:00 in Shanghai


@dataclass(frozen=True)
class Line:
    at: datetime
    chat: str
    user: str
    text: str
    label: str  # checkin | greeting | agreement | question | chitchat | staff_promo | spam
    staff: bool = False
    message_type: str = "text"


def _questions(data: Path, rng: random.Random, n: int) -> list[str]:
    """Real user questions (LCQMC, BQ, ATEC) when the data is there, else a few of ours."""
    if not (data / "faq_matching_zh").exists():
        ours = ["请问团购价格多少？", "定金可以退吗", "什么时候发货？", "可以开发票吗"]
        return ours * (n // 4 + 1)
    from eval_moderation import questions  # bench/ is on the path

    pool = [q for texts in questions().values() for q in texts if 4 <= len(q) <= 40]
    return rng.sample(pool, k=n)


def _spam(data: Path, rng: random.Random, n: int) -> list[str]:
    folder = data / "spam_sms_zh" / "xiaojie16_6class"
    if not folder.exists():
        return [rng.choice(ADS) for _ in range(n)]
    from eval_moderation import spam_by_class, unmask  # bench/ is on the path

    pool = [unmask(t) for texts in spam_by_class().values() for t in texts if len(t) < 120]
    return rng.sample(pool, k=n)


def stream(data: Path, seed: int = 31, days: int = 28) -> list[Line]:
    """Every line of the mix, in time order."""
    rng = random.Random(seed)
    out: list[Line] = []
    questions = iter(_questions(data, rng, 1000))
    spam = iter(_spam(data, rng, 120))

    def at(day: int, hour: float, jitter_min: float = 0.0) -> datetime:
        # hours are Shanghai local (UTC+8)
        return BASE + timedelta(days=day, hours=hour - 8, minutes=jitter_min)

    for day in range(days):
        # the check-in class: mornings of shared words, the teacher's lesson first
        lesson = f"Day{day + 1} 今日内容已发，打卡截止今晚22点"
        out.append(Line(at(day, 7), "class", "teacher", lesson, "staff_promo", staff=True))
        for s in range(40):
            if rng.random() < 0.85:
                text = rng.choice(CHECKINS).format(d=day + 1)
                out.append(Line(at(day, 7, 1 + rng.random() * 14), "class", f"s{s}", text,
                                "checkin"))
        for _ in range(rng.randint(8, 16)):
            out.append(Line(at(day, 7, 12 + rng.random() * 40), "class", f"s{rng.randrange(40)}",
                            rng.choice(AGREEMENT), "agreement"))
        if day % 3 == 0:
            out.append(Line(at(day, 19), "class", "teacher", "今晚直播有优惠，有需要的可以私聊我",
                            "staff_promo", staff=True))
        # the launch group: newcomers together, questions, chat, the owner's announcements
        for k in range(rng.randint(3, 7)):
            who = f"o{day}-{k}"
            out.append(Line(at(day, 19, k * 0.3), "launch", who, rng.choice(GREETINGS),
                            "greeting"))
        for _ in range(rng.randint(25, 45)):
            r = rng.random()
            who = f"o{rng.randrange(day + 1)}-{rng.randrange(3)}"
            when = at(day, 19.5 + rng.random() * 3)
            if r < 0.35:
                out.append(Line(when, "launch", who, next(questions), "question"))
            elif r < 0.7:
                out.append(Line(when, "launch", who, rng.choice(CHITCHAT), "chitchat"))
            else:
                out.append(Line(when, "launch", who, rng.choice(AGREEMENT), "agreement"))
        out.append(Line(at(day, 20), "launch", "owner", rng.choice(PROMOS[1:2] + PROMOS[5:]),
                        "staff_promo", staff=True))
        # the agent group: staff promotions, agents answering
        for k, promo in enumerate(rng.sample(PROMOS, k=2)):
            out.append(Line(at(day, 10 + k * 5), "agents", f"brand{k}", promo, "staff_promo",
                            staff=True))
            for a in range(rng.randint(2, 6)):
                out.append(Line(at(day, 10 + k * 5, 2 + a), "agents", f"agent{rng.randrange(25)}",
                                rng.choice((*AGREEMENT, "这款还有货吗？", "拿货价多少？")),
                                "agreement"))
        # most days an advertiser gets in somewhere
        if day % 4 != 3:
            chat = ("class", "launch", "agents")[day % 3]
            for k in range(rng.randint(1, 3)):
                out.append(Line(at(day, 14, k * 2), chat, f"ad{day}", next(spam), "spam"))
    out.sort(key=lambda line: (line.at, line.chat, line.user))
    return out


def raw_events(lines: list[Line]) -> Iterator[tuple[Line | None, dict[str, Any]]]:
    """Sandbox events: each group opened by its owner, members joining before they speak."""
    owners = {"class": "teacher", "launch": "owner", "agents": "brand0"}
    seen: set[tuple[str, str]] = set()
    n = 0
    for chat, owner in owners.items():
        n += 1
        yield None, {"type": "group", "id": f"g{n}", "at": (BASE - timedelta(days=3)).isoformat(),
                     "chat": chat, "chat_name": chat, "owner": owner,
                     "admins": ["brand1"] if chat == "agents" else []}
    for line in lines:
        if (line.chat, line.user) not in seen and not line.staff:
            seen.add((line.chat, line.user))
            n += 1
            joined = line.at - timedelta(days=5) if line.label != "spam" else \
                line.at - timedelta(minutes=3)
            yield None, {"type": "join", "id": f"j{n}", "at": joined.isoformat(),
                         "chat": line.chat, "user": line.user, "scene": "qr"}
        n += 1
        raw: dict[str, Any] = {"type": "message", "id": f"m{n}", "message_id": f"m{n}",
                               "at": line.at.isoformat(), "chat": line.chat, "user": line.user,
                               "text": line.text, "message_type": line.message_type}
        if line.staff:
            raw["user_staff"] = True
        yield line, raw


def run_rules(lines: list[Line]) -> dict[str, str]:
    """Feed the stream through the real path; message id → what moderation did
    (``ok`` | ``review`` | ``violation``)."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'mix.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        sandbox = SandboxAdapter(SandboxStore(str(Path(tmp) / "sbx.db")))
        rt = build_runtime(Settings(data_dir=Path(tmp), secret_key="bench"), engine=engine,
                           adapters={"sandbox": sandbox})
        with rt.uow.write() as conn:
            for section, values in (("moderation", {"enabled": True}),
                                    ("checkin", {"enabled": True}),
                                    ("points", {"enabled": True})):
                automation.do_update_settings(conn, actor=SYSTEM, section=section,
                                              values=values)
        ids: dict[str, Line] = {}
        events = list(raw_events(lines))
        for start in range(0, len(events), 500):
            with rt.uow.write() as conn:
                for line, raw in events[start:start + 500]:
                    for ev in sandbox.parse(raw).events:
                        do_ingest_event(conn, ev, config=rt.ingest_config,
                                        received_at=ev.occurred_at)
                    if line is not None:
                        ids[raw["message_id"]] = line
        outcome = dict.fromkeys(ids, "ok")
        with rt.uow.read() as conn:
            for message_id, action in conn.execute(select(
                    moderation_decisions.c.message_id, moderation_decisions.c.action)):
                outcome[message_id] = ("review" if action == "review" else
                                       "violation" if action in ("warn", "remove", "blacklist")
                                       else "ok")
            assert conn.execute(select(identities.c.id)).first() is not None
        rt.close()
        engine.dispose()
        sandbox.close()
    return outcome


def emulate_session13(lines: list[Line], clf: Classifier) -> list[str]:
    """The rules before issue 31, per line: moderation first (check-ins not protected), the
    same text counted across the group (3 in 10 minutes, 8+ characters), staff moderated,
    flood at 12 a minute, stricter for members of under 3 days (here: the advertisers)."""
    recent: dict[str, deque[tuple[datetime, str]]] = defaultdict(deque)
    per_member: dict[tuple[str, str], deque[datetime]] = defaultdict(deque)
    out = []
    for line in lines:
        window = recent[line.chat]
        while window and window[0][0] <= line.at - timedelta(seconds=600):
            window.popleft()
        window.append((line.at, line.text))
        same = sum(1 for _t, text in window if text == line.text)
        mine = per_member[(line.chat, line.user)]
        while mine and mine[0] <= line.at - timedelta(seconds=60):
            mine.popleft()
        mine.append(line.at)
        new = line.label == "spam"  # advertisers joined minutes before, everyone else days
        verdict = clf.classify(line.text, message_type=line.message_type, strict=new).verdict
        repeat = same >= 3 and len(line.text.strip()) >= 8
        flood = len(mine) > (8 if new else 12)
        out.append("violation" if verdict == "block" or repeat or flood else
                   "review" if verdict == "review" else "ok")
    return out


def evaluate(data: Path) -> dict[str, Any]:
    lines = stream(data)
    now = run_rules(lines)
    by_id = list(now.values())  # in stream order (dicts keep insertion order)
    before = emulate_session13(lines, Classifier())

    def table(results: list[str]) -> dict[str, Any]:
        per: dict[str, Counter[str]] = defaultdict(Counter)
        for line, result in zip(lines, results, strict=True):
            per[line.label][result] += 1
        innocent = [r for line, r in zip(lines, results, strict=True) if line.label != "spam"]
        spam = [r for line, r in zip(lines, results, strict=True) if line.label == "spam"]
        return {
            "by_label": {k: dict(v) for k, v in sorted(per.items())},
            "innocent": len(innocent),
            "false_violations": sum(r == "violation" for r in innocent) / len(innocent),
            "false_flagged": sum(r != "ok" for r in innocent) / len(innocent),
            "spam": len(spam),
            "spam_flagged": sum(r != "ok" for r in spam) / (len(spam) or 1),
        }

    return {"lines": len(lines), "now": table(by_id), "session13_rules": table(before)}
