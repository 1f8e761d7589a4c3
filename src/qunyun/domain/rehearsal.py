"""A plan rehearsed on the simulator (F33, pure): who is reached, joins, pays and talks
on each day of a plan — as expected values (the forecast) and as seeded draws (the
simulated community the service sends through the real event path).

Both come from one model, so the forecast is what the simulation averages to:

- **Reach**: the goal's reach over the recruiting days (the recruiting stage's, else the
  plan's), at most staff × contacts a day when the goal has staff capacity, else evenly.
- **Joins**: each person reached joins with the join rate, at a time of day drawn from
  when people are on their phones (evenings), through one of the plan's channels, into
  the first group with room (capacity × fill), as a join code fills groups.
- **Money**: a member pays a deposit with the deposit rate — on a launch day still to come
  if the plan has a launch stage, else on the day they join or one of the two after;
  a payer buys with the purchase rate that day or the next. A day past the plan's end
  counts nowhere.
- **Talk**: a share of members never speak (lurkers); the others speak on a day with
  their own probability (Beta-distributed: a few talk every day, most now and then),
  post a heavy-tailed number of messages in bursts, draw replies, and go quiet after an
  exponential number of days. Some leave within three days of joining.
- **Reactions** (simulation only, not in the forecast): a push (a playbook step or a
  broadcast) draws answers within the next hours; beyond ``push_tolerance`` pushes in a
  group's day, every further push makes some members leave and some talkers mute.

Calibration: the simulated talk must look like real groups' — activity Gini, daily active
share and the burstiness of message gaps inside :data:`REAL_RANGES`.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from qunyun.domain.groups import gini

# when people speak and join, per local hour (a workday's phone use; evenings peak)
HOUR_WEIGHTS = (1.0, 0.5, 0.3, 0.2, 0.2, 0.3, 1.0, 3.0, 4.0, 4.0, 4.0, 4.0,
                5.0, 4.0, 3.0, 3.0, 3.0, 4.0, 5.0, 7.0, 10.0, 10.0, 8.0, 4.0)
EVENING = (19 * 60, 23 * 60)  # when deposits and orders are placed (after the live session)
TALK = (
    "收到👍", "好的", "哈哈哈", "支持！", "谢谢群主", "已报名", "已转发朋友圈", "我也想要",
    "今晚几点开始？", "活动规则再发一下", "抽奖什么时候开奖", "小区几号楼的邻居？",
    "沙发有现货吗", "地板有样品可以看吗", "窗帘可以上门量尺寸吗", "我家是三居室，推荐哪款？",
    "定金可以退吗", "什么时候发货？", "有没有优惠券", "刚看到，晚上再细看",
)
REACTIONS = ("来了来了", "已看", "这个好", "怎么参加？", "👍👍", "收到，谢谢", "想要+1")
# people rarely type the same sentence twice: a small tail makes repeated lines differ (the
# community simulator's too)
TAILS = ("", "", "", "～", "!", "呀", "😄", "👍", "哈", "。", "了", "吧")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = ("先生", "女士", "姐", "哥", "总", "老师", "妈妈", "爸爸", "小姐", "🌸", "、小店")

# What real groups show (the calibration's bounds): a real 723-member WeChat group's
# message Gini was 0.89; daily speakers a few to a few dozen in a hundred members;
# chat gaps are bursty (a Poisson stream scores 0, a steady one -1): ten real #ubuntu IRC
# samples score 0.34–0.93 (bench/rehearsal_bench.py).
REAL_RANGES: dict[str, tuple[float, float]] = {
    "gini": (0.75, 0.95),
    "daily_active_share": (0.03, 0.35),
    "burstiness": (0.15, 0.95),
}

Kind = Literal["join", "message", "leave", "deposit", "purchase"]


@dataclass(frozen=True, slots=True)
class Community:
    """How the simulated people behave (defaults from the seeds and real groups)."""

    lurker_share: float = 0.45
    speak_alpha: float = 0.6  # a talker's chance to speak on a day: Beta(alpha, beta)
    speak_beta: float = 1.8
    burst_alpha: float = 1.3  # messages on a speaking day: Pareto, at least one
    reply_share: float = 0.35
    quiet_days: float = 6.0
    leave_share: float = 0.05
    reaction_share: float = 0.05
    push_tolerance: int = 3
    leave_per_extra_push: float = 0.02
    mute_per_extra_push: float = 0.05

    @property
    def mean_speak(self) -> float:
        return self.speak_alpha / (self.speak_alpha + self.speak_beta)


@dataclass(frozen=True, slots=True)
class Outreach:
    """The plan as the model needs it: its days, people reached per day, the rates, the
    launch days (indexes), the channels people join through and the groups' room."""

    days: tuple[str, ...]
    reach: tuple[int, ...]
    join_rate: float
    deposit_rate: float
    purchase_rate: float
    launch: tuple[int, ...] = ()
    channels: tuple[str, ...] = ("plan",)
    room: tuple[int, ...] = (90,)  # members each group takes before the next one opens
    already: tuple[int, ...] = ()  # members in each group when the plan starts


def reach_per_day(days: int, recruiting: tuple[int, int], total: int,
                  per_day: int | None) -> list[int]:
    """People reached each day: ``total`` over the recruiting days ``(first, last)``
    (indexes), at ``per_day`` until it is used up when staff capacity is known, else as
    evenly as whole people go (earlier days take the remainder)."""
    first, last = recruiting
    out = [0] * days
    span = list(range(first, last + 1))
    if not span or total <= 0:
        return out
    if per_day:
        left = total
        for i in span:
            out[i] = min(per_day, left)
            left -= out[i]
        return out
    base, extra = divmod(total, len(span))
    for n, i in enumerate(span):
        out[i] = base + (n < extra)
    return out


def deposit_days(joined: int, days: int, launch: Sequence[int]) -> list[tuple[int, float]]:
    """Where a member who joined on day ``joined`` pays, with each day's probability
    (the rest falls after the plan)."""
    ahead = [i for i in launch if i >= joined]
    if ahead:
        return [(i, 1 / len(ahead)) for i in ahead]
    return [(i, 1 / 3) for i in range(joined, joined + 3) if i < days]


def purchase_days(paid: int, days: int) -> list[tuple[int, float]]:
    return [(i, 0.5) for i in (paid, paid + 1) if i < days]


def _stay(age: int, community: Community) -> float:
    """The share of a day's joiners still in after ``age`` days (leavers go on day 1–3)."""
    return 1 - community.leave_share * min(age, 3) / 3


def forecast(o: Outreach, community: Community = Community()) -> list[dict[str, float]]:
    """Each day's expected reached, joined, active (distinct speakers), enrolled, deposit
    and purchase — the simulation's averages, without reactions to pushes."""
    n = len(o.days)
    joined = [r * o.join_rate for r in o.reach]
    deposit = [0.0] * n
    purchase = [0.0] * n
    for j, people in enumerate(joined):
        for d, p in deposit_days(j, n, o.launch):
            paying = people * o.deposit_rate * p
            deposit[d] += paying
            for b, q in purchase_days(d, n):
                purchase[b] += paying * o.purchase_rate * q
    talkers = (1 - community.lurker_share) * community.mean_speak
    active = [0.0] * n
    for d in range(n):
        for j in range(d + 1):
            age = d - j
            share = 0.5 if age == 0 else math.exp(-age / community.quiet_days) * _stay(
                age, community)
            active[d] += joined[j] * talkers * share
    return [{"day": i, "reached": float(o.reach[i]), "joined": joined[i],
             "active": active[i], "enrolled": deposit[i], "deposit": deposit[i],
             "purchase": purchase[i]} for i in range(n)]


@dataclass(frozen=True, slots=True)
class Happening:
    """One thing a simulated person does: ``minute`` of the plan's day ``day``."""

    day: int
    minute: int
    kind: Kind
    person: int
    group: int
    channel: str = ""
    text: str = ""


@dataclass(slots=True)
class Person:
    name: str
    group: int
    joined: int
    minute: int
    speak: float  # 0 for a lurker
    quiet_after: float  # days
    left: bool = False
    muted: bool = False


@dataclass
class Crowd:
    """The simulated community, day by day; seeded, so one seed gives one rehearsal."""

    outreach: Outreach
    community: Community = field(default_factory=Community)
    seed: int = 7
    people: list[Person] = field(default_factory=list)
    present: list[int] = field(default_factory=list)  # members in each group now
    pushes: dict[tuple[int, int], int] = field(default_factory=dict)  # (group, day) → n
    later: dict[int, list[Happening]] = field(default_factory=dict)  # day → planned ahead
    full_on: dict[int, int] = field(default_factory=dict)  # group → the day it took its room

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.present = [0] * len(self.outreach.room)

    def existing(self) -> list[Happening]:
        """The members already in the groups, as joins on the day before the plan; they
        joined long ago (a month), so few of them still talk."""
        out: list[Happening] = []
        for g, n in enumerate(self.outreach.already):
            for _ in range(n):
                number = len(self.people)
                self.people.append(Person(self._name(), g, -30, 0, 0.0, 0.0))
                self.present[g] += 1
                out.append(Happening(-1, self.rng.randrange(1440), "join", number, g,
                                     "existing"))
            if n >= self.outreach.room[g]:
                self.full_on.setdefault(g, 0)  # full before the plan starts
        out.sort(key=lambda h: h.minute)
        return out

    def _minute(self, after: int = 0) -> int:
        """A minute of the day, drawn by phone use, not before ``after`` (1440: none
        left today)."""
        if after >= 1440:
            return 1440
        hours = range(after // 60, 24)
        hour = self.rng.choices(hours, weights=[HOUR_WEIGHTS[h] for h in hours])[0]
        low = after if hour == after // 60 else hour * 60
        return self.rng.randint(low, hour * 60 + 59)

    def _name(self) -> str:
        name = self.rng.choice(SURNAMES) + self.rng.choice(GIVEN)
        roll = self.rng.random()
        if roll < 0.05:
            return f"“{name}”"
        if roll < 0.1:
            return f"{name} {self.rng.randint(1, 99)}号楼"
        return name

    def _text(self, lines: Sequence[str]) -> str:
        return self.rng.choice(lines) + self.rng.choice(TAILS)

    def _group(self, d: int) -> int:
        """The first group with room (as a join code fills them), noting the day a group
        takes its room; when all are full, the last one."""
        for g, room in enumerate(self.outreach.room):
            if self.present[g] < room:
                if self.present[g] + 1 >= room:
                    self.full_on.setdefault(g, d)
                return g
        last = len(self.outreach.room) - 1  # all full: the last one overflows
        self.full_on.setdefault(last, d)
        return last

    def _plan(self, h: Happening) -> None:
        if h.day < len(self.outreach.days):
            self.later.setdefault(h.day, []).append(h)

    def day(self, d: int) -> list[Happening]:
        """Everything planned for day ``d`` (joins, talk, leaves, money), by minute."""
        o, c, rng = self.outreach, self.community, self.rng
        out: list[Happening] = []
        reached = o.reach[d]
        joins = sum(rng.random() < o.join_rate for _ in range(reached))
        for _ in range(joins):
            minute = self._minute()
            g = self._group(d)
            self.present[g] += 1
            talker = rng.random() >= c.lurker_share
            speak = rng.betavariate(c.speak_alpha, c.speak_beta) if talker else 0.0
            number = len(self.people)
            self.people.append(Person(self._name(), g, d, minute, speak,
                                      rng.expovariate(1 / c.quiet_days)))
            out.append(Happening(d, minute, "join", number, g, rng.choice(o.channels)))
            if rng.random() < c.leave_share:
                self._plan(Happening(d + rng.randint(1, 3), self._minute(), "leave",
                                     number, g))
            if rng.random() < o.deposit_rate:
                self._pay(number, g, d, minute)
        out.extend(self._talk(d))
        out.extend(self.later.pop(d, []))
        out.sort(key=lambda h: (h.minute, h.kind != "join", h.person))
        return out

    def _pay(self, number: int, g: int, d: int, minute: int) -> None:
        """A member who will pay: the day (as :func:`deposit_days` weighs them), and
        perhaps an order that day or the next."""
        rng = self.rng
        options = deposit_days(d, len(self.outreach.days), self.outreach.launch)
        if not options or rng.random() >= sum(p for _, p in options):
            return  # pays after the plan ends
        paid = rng.choices([i for i, _ in options], weights=[p for _, p in options])[0]
        at = rng.randint(*EVENING)
        if paid == d:
            at = max(at, minute + 5)
        self._plan(Happening(paid, min(at, 1439), "deposit", number, g))
        if rng.random() < self.outreach.purchase_rate:
            bought = rng.choice((paid, paid + 1))
            when = min(at + 10, 1439) if bought == paid else rng.randint(*EVENING)
            self._plan(Happening(bought, when, "purchase", number, g))

    def _talk(self, d: int) -> list[Happening]:
        c, rng = self.community, self.rng
        speakers: dict[int, list[int]] = {}  # group → who speaks today
        out: list[Happening] = []
        for number, p in enumerate(self.people):
            if p.speak == 0 or p.left or p.muted or d - p.joined > p.quiet_after:
                continue
            chance = p.speak * (0.5 if d == p.joined else 1.0)
            if rng.random() >= chance:
                continue
            speakers.setdefault(p.group, []).append(number)
            first = self._minute(p.minute + 1 if d == p.joined else 0)
            if first >= 1440:
                continue
            count = min(30, int(rng.paretovariate(c.burst_alpha)))
            minute = first
            for _ in range(count):
                out.append(Happening(d, minute, "message", number, p.group,
                                     text=self._text(TALK)))
                minute = min(1439, minute + int(rng.expovariate(1 / 4)) + 1)
        for message in list(out):  # replies from others speaking today in the group
            mates = [m for m in speakers.get(message.group, ()) if m != message.person]
            if mates and rng.random() < c.reply_share:
                out.append(Happening(d, min(1439, message.minute + rng.randint(1, 5)),
                                     "message", rng.choice(mates), message.group,
                                     text=self._text(TALK)))
        return out

    def left(self, number: int) -> None:
        person = self.people[number]
        if not person.left:
            person.left = True
            self.present[person.group] -= 1

    def pushed(self, group: int, d: int, minute: int) -> list[Happening]:
        """A push reached ``group``: answers within two hours; past the group's tolerance
        for the day, some leave (within the hour) and some talkers mute for good."""
        c, rng = self.community, self.rng
        n = self.pushes.get((group, d), 0) + 1
        self.pushes[(group, d)] = n
        out: list[Happening] = []
        tired = n > c.push_tolerance
        for number, p in enumerate(self.people):
            if p.group != group or p.left or (p.joined, p.minute) > (d, minute):
                continue
            if tired and rng.random() < c.leave_per_extra_push:
                out.append(Happening(d, min(1439, minute + rng.randint(1, 60)), "leave",
                                     number, group))
                continue
            if p.speak == 0 or p.muted:
                continue
            if tired and rng.random() < c.mute_per_extra_push:
                p.muted = True
            elif rng.random() < c.reaction_share:
                at = minute + rng.randint(2, 120)
                if at < 1440:
                    out.append(Happening(d, at, "message", number, group,
                                         text=self._text(REACTIONS)))
        return out


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    value: float
    low: float
    high: float

    @property
    def ok(self) -> bool:
        return self.low <= self.value <= self.high


def burstiness(gaps: Sequence[float]) -> float:
    """(σ − μ) / (σ + μ) of the gaps between messages: 0 for a Poisson stream, towards 1
    for talk in bursts."""
    if len(gaps) < 2:
        return 0.0
    mean, sd = statistics.fmean(gaps), statistics.pstdev(gaps)
    return (sd - mean) / (sd + mean) if sd + mean else 0.0


def calibrate(per_member: Sequence[int], active_shares: Sequence[float],
              gaps: Sequence[float]) -> list[Check]:
    """The simulated talk against :data:`REAL_RANGES`: the Gini of messages per member
    (lurkers count as zeros), the median day's share of members who spoke, the
    burstiness of the gaps between messages in a group."""
    values = {"gini": gini(per_member),
              "daily_active_share": statistics.median(active_shares) if active_shares else 0.0,
              "burstiness": burstiness(gaps)}
    return [Check(name, round(values[name], 3), *REAL_RANGES[name]) for name in REAL_RANGES]


__all__ = ["REAL_RANGES", "Check", "Community", "Crowd", "Happening", "Outreach",
           "burstiness", "calibrate", "deposit_days", "forecast", "gini", "purchase_days",
           "reach_per_day"]
