"""Group health (F24): activity, speakers, lurkers, joins/leaves, peaks, concentration,
invitations and a score that explains itself. Read-only SQL over the store.

Days and hours are the team's (``tz``). Counting rules:
- ``messages``: member messages (direction in), not system notices, in the window.
- ``members``: open memberships now (observed or implied by speaking).
- ``leaves`` are voluntary leaves, *observed* (a notice, a platform callback) or derived
  from member-list snapshots (``leaves_from_snapshots``). WeChat exports rarely show them,
  so ``churn_basis`` says "observed", "snapshot", or "inferred from last seen" when neither
  exists, with ``gone_quiet`` counting members silent for ``quiet_days``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from statistics import mean, median, pstdev
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, and_, func, select

from qunyun.adapters.storage.tables import (
    groups,
    member_events,
    members,
    memberships,
    messages,
    moderation_decisions,
)
from qunyun.analytics.overview import local_date, local_day
from qunyun.clock import utcnow
from qunyun.domain.groups import gini
from qunyun.engine.moderation import is_ad
from qunyun.i18n import saying


def utc_hour_bucket(conn: Connection, column: Any) -> ColumnElement[Any]:
    """The UTC hour a timestamp falls in: SQLite stores UTC text, so a prefix does."""
    if conn.dialect.name == "postgresql":
        return func.date_trunc("hour", func.timezone("UTC", column))
    return func.substr(column, 1, 13)


def _bucket_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return datetime.strptime(str(value), "%Y-%m-%d %H").replace(tzinfo=UTC)


@dataclass
class ScorePart:
    key: str  # activity, speakers, retention, concentration
    value: float
    points: float
    max_points: float
    note: str  # why, in plain words (zh-CN)
    note_en: str  # the same in English


@dataclass
class GroupHealth:
    id: int
    name: str
    platform: str
    members: int
    messages: int
    speakers: int
    joins: int
    leaves: int
    kicks: int
    leaves_from_snapshots: int  # of ``leaves``, derived from member-list snapshots
    renames: int
    speaker_ratio: float
    never_spoke: int
    gone_quiet: int
    churn_basis: str
    days: list[str]
    messages_per_day: list[int]
    speakers_per_day: list[int]
    joins_per_day: list[int]
    leaves_per_day: list[int]
    leave_spikes: list[str]
    heatmap: list[list[int]]  # [weekday][hour]
    peak_hours: list[int]
    top10_share: float
    gini: float
    top_speakers: list[dict[str, Any]]
    invited: int
    invite_depth: int
    top_inviters: list[dict[str, Any]]
    hours_to_first_message: float | None
    score: float
    score_parts: list[ScorePart] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    ads: int = 0  # messages moderation judged ads in the window (not overturned)
    ad_rate: float = 0.0  # of member messages
    # each alert with what makes it one alert: its kind and anchor (the day a spike
    # happened, the last day anyone spoke), so it is raised once however often it is seen
    alert_items: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["score_parts"] = [p.__dict__ for p in self.score_parts]
        return data


def _window(tz: ZoneInfo, since: date | None, until: date | None, now: datetime
            ) -> tuple[date, date, datetime, datetime]:
    last = until or now.astimezone(tz).date()
    first = since or last - timedelta(days=29)
    if first > last:
        raise ValueError("since is after until")
    return (first, last, datetime.combine(first, time.min, tzinfo=tz),
            datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz))


def group_health(conn: Connection, *, tz: ZoneInfo, group_id: int | None = None,
                 since: date | None = None, until: date | None = None, quiet_days: int = 14,
                 now: datetime | None = None) -> list[GroupHealth]:
    now = now or utcnow()
    first, last, start, end = _window(tz, since, until, now)
    labels = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    gq = select(groups.c.id, groups.c.name, groups.c.platform).order_by(groups.c.id)
    if group_id is not None:
        gq = gq.where(groups.c.id == group_id)
    group_rows = conn.execute(gq).all()
    if not group_rows:
        return []
    ids = [g.id for g in group_rows]
    in_window = and_(messages.c.group_id.in_(ids), messages.c.direction == "in",
                     messages.c.sent_at >= start, messages.c.sent_at < end)

    # pass 1, counts per UTC hour (no time zone function per row, a few thousand rows); each
    # bucket moves into the team's zone here: exact for whole-hour offsets, DST included
    bucket = utc_hour_bucket(conn, messages.c.sent_at).label("bucket")
    per_day: dict[int, dict[str, list[int]]] = defaultdict(dict)  # day -> [messages, speakers]
    heat: dict[int, list[list[int]]] = defaultdict(lambda: [[0] * 24 for _ in range(7)])
    for gid, b, n in conn.execute(
            select(messages.c.group_id, bucket, func.count())
            .where(in_window).group_by(messages.c.group_id, bucket)):
        local = _bucket_time(b).astimezone(tz)
        heat[gid][local.weekday()][local.hour] += int(n)
        per_day[gid].setdefault(local.date().isoformat(), [0, 0])[0] += int(n)

    # pass 2, messages per (local day, member): distinct speakers per day and each member's
    # count in the window, in one scan
    day = local_date(conn, messages.c.sent_at, tz, (start, end)).label("day")
    counts: dict[int, dict[int, int]] = defaultdict(dict)
    speakers_on: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for gid, d, mid, n in conn.execute(
            select(messages.c.group_id, day, messages.c.member_id, func.count())
            .where(in_window, messages.c.member_id.is_not(None))
            .group_by(messages.c.group_id, day, messages.c.member_id)):
        speakers_on[gid][str(d)] += 1
        counts[gid][int(mid)] = counts[gid].get(int(mid), 0) + int(n)
    for gid, days in speakers_on.items():
        for d, people in days.items():
            per_day[gid].setdefault(d, [0, 0])[1] = people

    # membership events per day
    eday = local_day(conn, member_events.c.occurred_at, tz, (start, end)).label("day")
    events: dict[int, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for gid, kind, d, n in conn.execute(
            select(member_events.c.group_id, member_events.c.kind, eday, func.count())
            .where(member_events.c.group_id.in_(ids),
                   member_events.c.kind.in_(("joined", "left", "left_snapshot", "removed",
                                              "group_renamed")),
                   member_events.c.occurred_at >= start, member_events.c.occurred_at < end)
            .group_by(member_events.c.group_id, member_events.c.kind, eday)):
        events[gid][kind][str(d)] = int(n)

    # memberships (first/last message kept per membership period): current members and
    # lurkers, invitation edges, time to first message — no pass over all messages
    current: dict[int, list[tuple[int, datetime, datetime | None, bool]]] = defaultdict(list)
    invites: dict[int, list[tuple[int, int]]] = defaultdict(list)
    waits: dict[int, list[float]] = defaultdict(list)
    quiet_since = min(end, now) - timedelta(days=quiet_days)
    for gid, mid, inviter, joined, observed, left_at, first_at, last_at in conn.execute(
            select(memberships.c.group_id, memberships.c.member_id,
                   memberships.c.inviter_member_id, memberships.c.joined_at,
                   memberships.c.join_observed, memberships.c.left_at,
                   memberships.c.first_message_at, memberships.c.last_message_at)
            .where(memberships.c.group_id.in_(ids))):
        if left_at is None:
            current[gid].append((int(mid), joined, last_at, bool(observed)))
        if inviter is not None:
            invites[gid].append((int(inviter), int(mid)))
        if observed and first_at is not None and first_at >= joined:
            waits[gid].append((first_at - joined).total_seconds() / 3600)

    names = _names(conn, counts, invites)
    ads = _ads(conn, ids, start, end)
    last_spoke = dict(conn.execute(
        select(messages.c.group_id, func.max(messages.c.sent_at))
        .where(messages.c.group_id.in_(ids), messages.c.direction == "in",
               messages.c.sent_at < end).group_by(messages.c.group_id)).all())

    return [
        _build(g, labels, per_day[g.id], counts[g.id], heat[g.id], events[g.id], current[g.id],
               invites[g.id], waits[g.id], quiet_since, names, ads.get(g.id, 0),
               last_spoke.get(g.id), tz)
        for g in group_rows
    ]


def _ads(conn: Connection, ids: list[int], start: datetime, end: datetime) -> dict[int, int]:
    """Messages judged ads per group: blocked for what they said (not only for flooding),
    or confirmed by a person; overturned decisions were no ads."""
    out: dict[int, int] = defaultdict(int)
    for gid, verdict, status, signals in conn.execute(
            select(moderation_decisions.c.group_id, moderation_decisions.c.verdict,
                   moderation_decisions.c.status, moderation_decisions.c.signals)
            .where(moderation_decisions.c.group_id.in_(ids),
                   moderation_decisions.c.created_at >= start,
                   moderation_decisions.c.created_at < end,
                   moderation_decisions.c.status != "overturned",
                   moderation_decisions.c.verdict.in_(("block", "review")))):
        if status == "confirmed" or is_ad(verdict, signals or []):
            out[int(gid)] += 1
    return out


def _names(conn: Connection, counts: dict[int, dict[int, int]],
           invites: dict[int, list[tuple[int, int]]]) -> dict[int, str]:
    """Display names of each group's top speakers and top inviters (all the report names)."""
    top: set[int] = set()
    for per_member in counts.values():
        top.update(sorted(per_member, key=per_member.__getitem__, reverse=True)[:10])
    for edges in invites.values():
        tally: dict[int, int] = defaultdict(int)
        for parent, _child in edges:
            tally[parent] += 1
        top.update(sorted(tally, key=tally.__getitem__, reverse=True)[:10])
    if not top:
        return {}
    return {int(i): n for i, n in conn.execute(
        select(members.c.id, members.c.display_name).where(members.c.id.in_(top)))}


def _depth(edges: list[tuple[int, int]]) -> int:
    children: dict[int, list[int]] = defaultdict(list)
    invited = set()
    for parent, child in edges:
        children[parent].append(child)
        invited.add(child)
    roots = [p for p in children if p not in invited] or list(children)
    best = 0
    for root in roots:
        stack, seen = [(root, 0)], {root}
        while stack:
            node, d = stack.pop()
            best = max(best, d)
            for c in children.get(node, ()):
                if c not in seen:
                    seen.add(c)
                    stack.append((c, d + 1))
    return best


# an ad rate above this (with at least AD_ALERT_MIN ads) is an alert
AD_ALERT_RATE = 0.02
AD_ALERT_MIN = 3


def _build(g: Any, labels: list[str], per_day: dict[str, list[int]],
           counts: dict[int, int], heat: list[list[int]], events: dict[str, dict[str, int]],
           current: list[tuple[int, datetime, datetime | None, bool]],
           invites: list[tuple[int, int]], waits: list[float], quiet_since: datetime,
           names: dict[int, str], ads: int, last_spoke: datetime | None,
           tz: ZoneInfo) -> GroupHealth:
    msgs = [per_day.get(d, [0, 0])[0] for d in labels]
    speakers_day = [per_day.get(d, [0, 0])[1] for d in labels]
    joins = [events.get("joined", {}).get(d, 0) for d in labels]
    seen_leaves = [events.get("left", {}).get(d, 0) for d in labels]
    listed_leaves = [events.get("left_snapshot", {}).get(d, 0) for d in labels]
    leaves = [a + b for a, b in zip(seen_leaves, listed_leaves, strict=True)]
    kicks = sum(events.get("removed", {}).values())
    members_now = len(current)
    speakers = len(counts)
    # zeros for current members who did not speak: concentration over the whole room
    talk = list(counts.values()) + [0] * sum(1 for m, *_ in current if m not in counts)
    ordered = sorted(counts.values(), reverse=True)
    total = sum(ordered)
    top_n = max(1, len(talk) // 10)
    top10 = sum(ordered[:top_n]) / total if total else 0.0
    never = sum(1 for _m, _j, last_at, _o in current if last_at is None)
    quiet = sum(1 for _m, _j, last_at, _o in current
                if last_at is not None and last_at < quiet_since)
    spikes = []
    if any(leaves):
        mu, sd = mean(leaves), pstdev(leaves)
        spikes = [d for d, n in zip(labels, leaves, strict=True) if n >= max(3, mu + 3 * sd)]
    inviter_counts: dict[int, int] = defaultdict(int)
    for parent, _child in invites:
        inviter_counts[parent] += 1
    hour_totals = [sum(heat[w][h] for w in range(7)) for h in range(24)]
    peaks = sorted(range(24), key=lambda h: hour_totals[h], reverse=True)[:3] if total else []
    ratio = speakers / members_now if members_now else 0.0
    g_value = gini(talk)
    parts = _score(sum(msgs) / max(1, len(labels)), members_now, ratio, sum(joins), sum(leaves)
                   + kicks, g_value, total=total, speakers=speakers)
    week = date.fromisoformat(labels[-1]).strftime("%G-W%V")
    items: list[dict[str, Any]] = []
    for day in spikes:
        items.append(_alert("leave_spike", day, f"退群激增: {day}", day=day))
    silent = len(labels) >= 3 and not any(msgs[-3:])
    if members_now >= 20 and ratio < 0.05 and not silent:  # silence says it already
        items.append(_alert("few_speakers", week, "发言人数不足 5%"))
    if silent:
        quiet_from = last_spoke.astimezone(tz).date().isoformat() if last_spoke else "never"
        items.append(_alert("silent", quiet_from, "最近 3 天无人发言"))
    rate = ads / total if total else 0.0
    if ads >= AD_ALERT_MIN and rate >= AD_ALERT_RATE:
        items.append(_alert("ads", week, f"广告偏多：{ads} 条，占消息 {rate:.1%}", ads=ads,
                            share=f"{rate:.1%}"))
    alerts = [i["text"] for i in items]
    return GroupHealth(
        id=g.id, name=g.name, platform=g.platform, members=members_now, messages=sum(msgs),
        speakers=speakers, joins=sum(joins), leaves=sum(leaves), kicks=kicks,
        renames=sum(events.get("group_renamed", {}).values()), speaker_ratio=round(ratio, 4),
        never_spoke=never, gone_quiet=quiet,
        leaves_from_snapshots=sum(listed_leaves),
        churn_basis=("observed" if sum(seen_leaves) + kicks else
                     "snapshot" if sum(listed_leaves) else "inferred from last seen"),
        days=labels, messages_per_day=msgs, speakers_per_day=speakers_day,
        joins_per_day=joins, leaves_per_day=leaves, leave_spikes=spikes, heatmap=heat,
        peak_hours=peaks, top10_share=round(top10, 4), gini=round(g_value, 4),
        top_speakers=[{"member_id": m, "name": names.get(m, ""), "messages": n}
                      for m, n in sorted(counts.items(), key=lambda kv: -kv[1])[:10]],
        invited=len(invites), invite_depth=_depth(invites),
        top_inviters=[{"member_id": m, "name": names.get(m, ""), "invited": n}
                      for m, n in sorted(inviter_counts.items(), key=lambda kv: -kv[1])[:10]],
        hours_to_first_message=round(median(waits), 2) if waits else None,
        score=round(sum(p.points for p in parts), 1), score_parts=parts, alerts=alerts,
        ads=ads, ad_rate=round(rate, 4), alert_items=items)


def _alert(kind: str, anchor: str, text: str, **values: Any) -> dict[str, Any]:
    """An alert: its kind, what makes it one alert (a day, a week), the Chinese text (kept
    for old readers) and the same as words any page shows in its reader's language."""
    return {"kind": kind, "anchor": anchor, "text": text,
            "says": saying(f"health.alert.{kind}", **values)}


# talk too thin to say whether it is even: fewer messages or speakers than this
EVEN_MIN_MESSAGES = 20
EVEN_MIN_SPEAKERS = 3


def _score(per_day: float, members_now: int, ratio: float, joins: int, gone: int,
           g: float, *, total: int, speakers: int) -> list[ScorePart]:
    """Four parts, 25 points each; every part says why it scored what it did.

    A group nobody is in scores nothing. How evenly people talk is judged only on enough
    talk: a silent group's Gini of 0 is no virtue (it used to give 25 points, so a silent
    group outscored one with six messages)."""
    per_100 = per_day / max(1, members_now) * 100
    activity = min(25.0, per_100 / 20 * 25)  # 20 messages a day per 100 members = full marks
    speaking = min(25.0, ratio / 0.3 * 25)  # 30 % of members speaking = full marks
    retention = 25.0 if joins == 0 and gone == 0 else max(0.0, 25 * (1 - gone / max(1, joins)))
    judged = total >= EVEN_MIN_MESSAGES and speakers >= EVEN_MIN_SPEAKERS
    concentration = max(0.0, min(25.0, (1 - g) / 0.5 * 25)) if judged else 0.0
    if members_now == 0:
        activity = speaking = retention = concentration = 0.0
    even_zh = (f"发言集中度 Gini {g:.2f}（越低越均衡，0.5 以下得满分）" if judged else
               f"发言太少（{total} 条、{speakers} 人），不评均衡度")
    even_en = (f"talk concentration Gini {g:.2f} (lower is more even; ≤ 0.5 for full marks)"
               if judged else f"too little talk ({total} messages, {speakers} speakers) to "
               "judge how even it is")
    return [
        ScorePart("activity", round(per_100, 2), round(activity, 1), 25,
                  f"每百人每天 {per_100:.1f} 条消息（20 条得满分）",
                  f"{per_100:.1f} messages a day per 100 members (20 for full marks)"),
        ScorePart("speakers", round(ratio, 4), round(speaking, 1), 25,
                  f"{ratio:.0%} 的成员发过言（30% 得满分）",
                  f"{ratio:.0%} of members spoke (30% for full marks)"),
        ScorePart("retention", gone, round(retention, 1), 25,
                  f"入群 {joins} 人，离开或被移出 {gone} 人",
                  f"{joins} joined, {gone} left or were removed"),
        ScorePart("concentration", round(g, 4), round(concentration, 1), 25, even_zh,
                  even_en),
    ]
