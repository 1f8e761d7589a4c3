"""The community simulator (F33): raw sandbox events for groups that live a few weeks.

Members join through invitations (from staff or from members already inside: an invitation
tree) and QR posters (a channel each); talk is heavy-tailed (Pareto weights, many lurkers:
a real 723-person group had a Gini of 0.89 over messages) and peaks 20:00–22:00; people go
quiet after a while, some leave, a few check in every morning, some ask the usual
questions, and advertisers join by QR, post ads and are removed. Seeded and deterministic:
the same scenario gives the same events, byte for byte. Events come out in time order and
go through the real path (sandbox adapter → ingest → rules → outbox).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from qunyun.domain.rehearsal import SURNAMES, TAILS

DEFAULT_STAFF = ("顾问小林", "顾问阿杰", "顾问美美", "顾问大刘", "顾问小周")
DEFAULT_TALK = (
    "收到👍", "好的", "哈哈哈", "支持！", "谢谢群主", "已报名", "已转发朋友圈", "我也想要",
    "今晚几点开始？", "活动规则再发一下", "抽奖什么时候开奖", "小区几号楼的邻居？",
    "沙发有现货吗", "地板有样品可以看吗", "窗帘可以上门量尺寸吗", "我家是三居室，推荐哪款？",
)
DEFAULT_QUESTIONS = ("请问团购价格多少？", "定金可以退吗", "什么时候发货？", "可以开发票吗")
DEFAULT_ADS = (
    "招兼职刷单，日结300，加V：abc12345",
    "低息贷款当天放款，不看征信，联系电话 13812345678",
    "本店新品全场五折，扫码进店领券 www.shop-example.cn",
    "想赚钱的加我微信 money_8888，带你躺赚",
)
GIVEN = ("先生", "女士", "姐", "哥", "总", "老师", "妈妈", "爸爸", "小姐")
PEAK_HOURS = (20, 20, 21, 21, 19, 22)
OTHER_HOURS = (8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 23)


@dataclass(frozen=True)
class Scenario:
    groups: int = 6
    members: int = 600
    days: int = 14
    seed: int = 7
    end: datetime | None = None  # aware; default: now
    utc_offset_hours: int = 8  # the community's local time (peaks are local)
    chat_prefix: str = "sim-g"
    group_name: str = "模拟群{n}"
    staff: Sequence[str] = DEFAULT_STAFF
    talk: Sequence[str] = DEFAULT_TALK
    questions: Sequence[str] = DEFAULT_QUESTIONS
    ads: Sequence[str] = DEFAULT_ADS
    spammer_name: str = "兼职日结"
    spammers_per_group: int = 1
    messages_per_member_day: float = 0.55
    lurker_share: float = 0.4
    pareto_alpha: float = 1.1
    qr_share: float = 0.3  # joins by poster QR code (channel "poster-a")
    member_invite_share: float = 0.25  # of invitations, made by members rather than staff
    question_share: float = 0.08  # of messages, one of the usual questions
    checkin_share: float = 0.08  # members who check in most mornings
    leave_share: float = 1 / 12
    quiet_after_days: float = 6.0  # mean days a talker keeps talking
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.groups <= 2000:
            raise ValueError("groups: between 1 and 2000")
        if not self.groups <= self.members <= 2_000_000:
            raise ValueError("members: at least one per group, at most 2,000,000")
        if not 1 <= self.days <= 365:
            raise ValueError("days: between 1 and 365")


@dataclass
class _Person:
    uid: str
    name: str
    joined: datetime  # local, naive
    weight: float
    quiet_at: datetime
    checks_in: bool


def generate(scenario: Scenario) -> Iterator[dict[str, Any]]:
    """Every raw event of the scenario, in time order."""
    events = list(_events(scenario))
    events.sort(key=lambda r: (r["at"], r["id"]))
    return iter(events)


def _events(sc: Scenario) -> Iterator[dict[str, Any]]:
    rng = random.Random(sc.seed)
    offset = timedelta(hours=sc.utc_offset_hours)
    end_utc = (sc.end or datetime.now(UTC)).astimezone(UTC)
    end = (end_utc + offset).replace(tzinfo=None)
    start = (end - timedelta(days=sc.days - 1)).replace(hour=0, minute=0, second=0,
                                                         microsecond=0)
    seq = 0

    def eid() -> str:
        nonlocal seq
        seq += 1
        return f"{sc.chat_prefix}-{sc.seed}-{seq:07d}"

    def stamp(local: datetime) -> str:
        return (local - offset).replace(tzinfo=UTC).isoformat()

    def local_time(day: datetime) -> datetime:
        hour = rng.choice(PEAK_HOURS) if rng.random() < 0.55 else rng.choice(OTHER_HOURS)
        return day + timedelta(hours=hour, minutes=rng.randrange(60),
                               seconds=rng.randrange(60))

    per_group = sc.members // sc.groups
    person = 0
    for g in range(1, sc.groups + 1):
        chat = f"{sc.chat_prefix}{g}"
        name = sc.group_name.format(n=g)
        yield {"type": "group", "id": eid(), "at": stamp(start + timedelta(seconds=g)),
               "chat": chat, "chat_name": name, "owner": "staff-0",
               "owner_name": sc.staff[0],
               "admins": [f"staff-{s}" for s in range(1, len(sc.staff))]}
        size = per_group + (sc.members % sc.groups if g == 1 else 0)
        size = max(1, int(size * rng.uniform(0.9, 1.1))) if sc.groups > 1 else size
        people: list[_Person] = []
        for _ in range(size):
            person += 1
            uid = f"{sc.chat_prefix}-u{person:06d}"
            nick = rng.choice(SURNAMES) + rng.choice(GIVEN)
            day = start + timedelta(days=min(max(0, sc.days - 5),
                                             int(rng.expovariate(0.35))))
            joined = min(local_time(day), end - timedelta(minutes=rng.randrange(30, 600)))
            joined = max(joined, start + timedelta(minutes=1))
            by_qr = rng.random() < sc.qr_share
            raw: dict[str, Any] = {"type": "join", "id": eid(), "at": stamp(joined),
                                   "chat": chat, "chat_name": name, "user": uid,
                                   "user_name": nick, "scene": "qr" if by_qr else "invite"}
            if by_qr:
                raw["channel"] = "poster-a"
            else:
                earlier = [p for p in people if p.joined < joined]
                if earlier and rng.random() < sc.member_invite_share:
                    inviter = rng.choice(earlier)
                    raw.update(inviter=inviter.uid, inviter_name=inviter.name,
                               channel="member-invite")
                else:
                    s = rng.randrange(len(sc.staff))
                    raw.update(inviter=f"staff-{s}", inviter_name=sc.staff[s],
                               channel=f"staff-{s}")
            yield raw
            talker = rng.random() >= sc.lurker_share
            people.append(_Person(
                uid=uid, name=nick, joined=joined,
                weight=rng.paretovariate(sc.pareto_alpha) if talker else 0.0,
                quiet_at=joined + timedelta(days=rng.expovariate(1 / sc.quiet_after_days)),
                checks_in=rng.random() < sc.checkin_share))
        yield from _talk(sc, rng, chat, people, end, eid, stamp, local_time)
        yield from _checkins(sc, rng, chat, people, end, eid, stamp)
        yield from _spam(sc, rng, chat, start, end, eid, stamp, local_time)
        for p in rng.sample(people, k=int(len(people) * sc.leave_share)):
            when = p.joined + timedelta(days=rng.randint(1, 4), hours=rng.randint(0, 12))
            if when < end:
                yield {"type": "leave", "id": eid(), "at": stamp(when), "chat": chat,
                       "user": p.uid}


def _talk(sc: Scenario, rng: random.Random, chat: str, people: list[_Person], end: datetime,
          eid: Any, stamp: Any, local_time: Any) -> Iterator[dict[str, Any]]:
    talkers = [p for p in people if p.weight > 0]
    if not talkers:
        return
    weights = [p.weight for p in talkers]
    total = int(len(people) * sc.days * sc.messages_per_member_day)
    for _ in range(total):
        p = rng.choices(talkers, weights=weights)[0]
        last = min(end, p.quiet_at)
        span = max(0, (last - p.joined).days)
        day = (p.joined + timedelta(days=rng.randint(0, span))).replace(hour=0, minute=0,
                                                                        second=0)
        when = local_time(day)
        if when <= p.joined:  # on the day they joined: some time after they came in
            when = p.joined + timedelta(minutes=rng.randrange(1, 600),
                                        seconds=rng.randrange(60))
        if when >= end:
            continue
        text = rng.choice(sc.questions if rng.random() < sc.question_share else sc.talk)
        text += rng.choice(TAILS)
        mid = eid()
        yield {"type": "message", "id": mid, "at": stamp(when), "chat": chat, "user": p.uid,
               "user_name": p.name, "message_id": mid, "text": text}


def _checkins(sc: Scenario, rng: random.Random, chat: str, people: list[_Person],
              end: datetime, eid: Any, stamp: Any) -> Iterator[dict[str, Any]]:
    for p in people:
        if not p.checks_in:
            continue
        day = p.joined.replace(hour=0, minute=0, second=0) + timedelta(days=1)
        while day < end:
            if rng.random() < 0.75:
                when = day + timedelta(hours=rng.choice((7, 7, 8, 8, 9)),
                                       minutes=rng.randrange(60))
                if when < end:
                    mid = eid()
                    yield {"type": "message", "id": mid, "at": stamp(when), "chat": chat,
                           "user": p.uid, "user_name": p.name, "message_id": mid,
                           "text": rng.choice(("打卡", "打卡✅", "今日打卡", "签到"))}
            day += timedelta(days=1)


def _spam(sc: Scenario, rng: random.Random, chat: str, start: datetime, end: datetime,
          eid: Any, stamp: Any, local_time: Any) -> Iterator[dict[str, Any]]:
    for i in range(sc.spammers_per_group):
        uid = f"{chat}-spam{i}"
        # from the fourth day on (or the last day of a short run), never after the end
        first = min(3, sc.days - 1)
        day = start + timedelta(days=rng.randint(first, max(first, sc.days - 2)))
        t = min(local_time(day), end - timedelta(minutes=30))
        yield {"type": "join", "id": eid(), "at": stamp(t), "chat": chat, "user": uid,
               "user_name": sc.spammer_name, "scene": "qr", "channel": "poster-a"}
        for k in range(rng.randint(1, 2)):
            mid = eid()
            yield {"type": "message", "id": mid, "at": stamp(t + timedelta(minutes=2 + k)),
                   "chat": chat, "user": uid, "user_name": sc.spammer_name,
                   "message_id": mid, "text": rng.choice(sc.ads)}
        yield {"type": "leave", "id": eid(), "at": stamp(t + timedelta(minutes=5)),
               "chat": chat, "user": uid, "by": "staff-0", "by_name": sc.staff[0]}
