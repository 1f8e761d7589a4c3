"""Scripts, step times, quiet hours and frequency caps (F16–F18): pure rules, no I/O.

A *script* (话术) is a text with ``{variables}`` and optional attachments. A *step time* says
when a playbook step fires: ``daily 08:00``, ``weekly 周一 09:00``, ``holiday 09:00``,
``at 2026-12-01 20:00`` or relative to a campaign start ``T-2d 20:00``, ``T-1h``, ``T+0``,
``T+30m``. The :class:`SendPlanner` places each send: out of quiet hours, under every cap, or
queued to the next period / dropped by policy, always with the reason.
"""

from __future__ import annotations

import bisect
import calendar
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from qunyun.i18n import InvalidValue


class ContentError(InvalidValue):
    """Invalid script, step time or cap; the message names the field."""


class ScriptKind(StrEnum):
    ANNOUNCEMENT = "announcement"
    INTERACTIVE = "interactive"
    FAQ_ANSWER = "faq_answer"
    PITCH = "pitch"
    WELCOME = "welcome"
    GREETING = "greeting"


# filled by qunyun for every send; anything else a script uses must be declared by it
BUILTIN_VARIABLES: tuple[str, ...] = ("name", "group", "activity", "deadline", "date", "holiday")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
ATTACHMENT_TYPES: dict[str, tuple[str, ...]] = {
    # type → required fields
    "image": ("url",),
    "link": ("url", "title"),
    "miniprogram": ("appid", "page", "title"),
}
_URL = re.compile(r"^https?://\S+$")


def variables_in(body: str) -> list[str]:
    """Variable names used by ``body`` in order of first use; malformed braces are an error."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(body))
    except ValueError as exc:
        raise ContentError("body: {exc} (write {{{{ and }}}} for a literal brace)",
                           exc=exc) from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not _IDENT.match(name) or spec or conversion:
            raise ContentError("body: {{{name}}} is not a variable name (letters, digits and _ "
                               "only)",
                               name=name)
        if name not in names:
            names.append(name)
    return names


def check_script(body: str, declared: Sequence[str],
                 attachments: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Validate a script at save time; returns the attachments normalised."""
    if not body.strip() and not attachments:
        raise ContentError("body: a script needs text or an attachment")
    if len(body) > 4000:
        raise ContentError("body: at most 4000 characters")
    for name in declared:
        if not _IDENT.match(name):
            raise ContentError("variables: {name!r} is not a variable name", name=name)
    unknown = [v for v in variables_in(body) if v not in BUILTIN_VARIABLES and v not in declared]
    if unknown:
        raise ContentError("body: unknown variable {{{name}}}; declare it or use one of "
                           "{choices}", name=unknown[0],
                           choices=", ".join("{" + v + "}" for v in BUILTIN_VARIABLES))
    out: list[dict[str, str]] = []
    for i, raw in enumerate(attachments):
        kind = str(raw.get("type", ""))
        if kind not in ATTACHMENT_TYPES:
            raise ContentError("attachments[{i}].type: one of {attachment_types}",
                               i=i, attachment_types=', '.join(ATTACHMENT_TYPES))
        item = {"type": kind}
        for key in ATTACHMENT_TYPES[kind]:
            value = str(raw.get(key) or "").strip()
            if not value:
                raise ContentError("attachments[{i}].{key}: required for {kind}",
                                   i=i, key=key, kind=kind)
            if key == "url" and not _URL.match(value):
                raise ContentError("attachments[{i}].url: must start with http:// or https://", i=i)
            item[key] = value
        out.append(item)
    if len(out) > 9:
        raise ContentError("attachments: at most 9")
    return out


_SLOT = re.compile(r"\{(\w+)\}")


def fill_slots(template: str, values: Mapping[str, object]) -> str:
    """A team's message with its ``{name}`` slots filled in one pass: a value that itself
    reads ``{count}`` (a nickname) stays as written, an unknown slot or a stray brace is left
    as it is (never an error, unlike ``str.format``)."""
    return _SLOT.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values
                     else m.group(0), template)


def render(body: str, values: Mapping[str, str]) -> tuple[str, list[str]]:
    """The text with variables filled, and the variables that had no value (left as is)."""
    missing: list[str] = []
    parts: list[str] = []
    for literal, name, _spec, _conv in string.Formatter().parse(body):
        parts.append(literal)
        if name is None:
            continue
        value = values.get(name)
        if value is None or value == "":
            missing.append(name)
            parts.append("{" + name + "}")
        else:
            parts.append(str(value))
    return "".join(parts), missing


# --- step times ---------------------------------------------------------------------------

_WEEKDAYS = {
    "mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6,
    "周一": 0, "周二": 1, "周三": 2, "周四": 3, "周五": 4, "周六": 5, "周日": 6, "周天": 6,
}
_HHMM = r"(\d{1,2}):(\d{2})"
_RELATIVE = re.compile(r"^T(?:\s*([+-])\s*(\d+)\s*([dhm])?)?(?:\s+" + _HHMM + r")?$")
_RECURRING = re.compile(r"^(daily|weekly\s+(\S+)|holiday)\s+" + _HHMM + "$")
_AT = re.compile(r"^at\s+(\d{4}-\d{2}-\d{2})\s+" + _HHMM + "$")


def _clock(hh: str, mm: str, spec: str) -> time:
    h, m = int(hh), int(mm)
    if h > 23 or m > 59:
        raise ContentError("{spec!r}: no time of day {hh}:{mm}", spec=spec, hh=hh, mm=mm)
    return time(h, m)


@dataclass(frozen=True, slots=True)
class When:
    """A parsed step time. ``kind`` is daily | weekly | holiday | at | relative."""

    spec: str
    kind: Literal["daily", "weekly", "holiday", "at", "relative"]
    clock: time | None = None
    weekday: int | None = None
    day: date | None = None
    offset: timedelta = timedelta()

    @property
    def recurring(self) -> bool:
        return self.kind in ("daily", "weekly", "holiday")

    @property
    def needs_start(self) -> bool:
        return self.kind == "relative"

    def occurrences(self, start: datetime, end: datetime, *, tz: ZoneInfo,
                    campaign_start: datetime | None = None) -> list[tuple[datetime, str]]:
        """Every firing in ``[start, end)`` (UTC) with its label (the holiday's name)."""
        if self.kind == "relative":
            if campaign_start is None:
                return []
            at = self._relative(campaign_start, tz)
            return [(at, "")] if start <= at < end else []
        if self.kind == "at":
            assert self.day is not None and self.clock is not None
            at = datetime.combine(self.day, self.clock, tzinfo=tz).astimezone(UTC)
            return [(at, "")] if start <= at < end else []
        assert self.clock is not None
        out: list[tuple[datetime, str]] = []
        day = start.astimezone(tz).date()
        last = end.astimezone(tz).date()
        names = holiday_calendar(tuple(range(day.year, last.year + 1))) \
            if self.kind == "holiday" else {}
        while day <= last:
            label = ""
            ok = self.kind == "daily" or (self.kind == "weekly" and day.weekday() == self.weekday)
            if self.kind == "holiday" and day in names:
                ok, label = True, names[day]
            if ok:
                at = datetime.combine(day, self.clock, tzinfo=tz).astimezone(UTC)
                if start <= at < end:
                    out.append((at, label))
            day += timedelta(days=1)
        return out

    def next_at(self, not_before: datetime, *, tz: ZoneInfo,
                campaign_start: datetime | None = None) -> tuple[datetime, str] | None:
        """The first firing at or after ``not_before``, or None when there is none left."""
        horizon = {"daily": 2, "weekly": 8, "holiday": 400}.get(self.kind, 0)
        end = not_before + timedelta(days=horizon) if horizon else datetime.max.replace(
            tzinfo=UTC)
        found = self.occurrences(not_before, end, tz=tz, campaign_start=campaign_start)
        return found[0] if found else None

    def _relative(self, campaign_start: datetime, tz: ZoneInfo) -> datetime:
        if self.clock is None:
            return campaign_start + self.offset
        local_day = (campaign_start.astimezone(tz) + self.offset).date()
        return datetime.combine(local_day, self.clock, tzinfo=tz).astimezone(UTC)


def parse_when(spec: str) -> When:
    try:
        return _parse_when(spec)
    except ContentError as exc:
        message = str(exc)
        raise ContentError(message if message.startswith("at: ") else f"at: {message}") from None


def _parse_when(spec: str) -> When:
    text = " ".join(spec.strip().split())
    if m := _RELATIVE.match(text):
        sign, amount, unit, hh, mm = m.groups()
        n = int(amount or 0)
        if n and not unit:
            raise ContentError("at: {spec!r}: give a unit after {n} (d, h or m)", spec=spec, n=n)
        if hh is not None and unit in ("h", "m") and n:
            raise ContentError("at: {spec!r}: a time of day goes with whole days (T-1d 20:00)",
                               spec=spec)
        delta = {"d": timedelta(days=n), "h": timedelta(hours=n),
                 "m": timedelta(minutes=n)}.get(unit or "d", timedelta())
        return When(text, "relative", clock=_clock(hh, mm, spec) if hh else None,
                    offset=-delta if sign == "-" else delta)
    if m := _RECURRING.match(text):
        head, day_name, hh, mm = m.groups()
        clock = _clock(hh, mm, spec)
        if head.startswith("weekly"):
            wd = _WEEKDAYS.get(day_name.lower())
            if wd is None:
                raise ContentError("at: {spec!r}: weekday is one of mon…sun or 周一…周日",
                                   spec=spec)
            return When(text, "weekly", clock=clock, weekday=wd)
        return When(text, "daily" if head == "daily" else "holiday", clock=clock)
    if m := _AT.match(text):
        try:
            day = date.fromisoformat(m.group(1))
        except ValueError:
            raise ContentError("at: {spec!r}: no such date", spec=spec) from None
        return When(text, "at", clock=_clock(m.group(2), m.group(3), spec), day=day)
    raise ContentError(
        "at: {spec!r} is not a step time; write daily 08:00, weekly 周一 09:00, holiday 09:00, "
        "at 2026-12-01 20:00, or relative to the campaign start: T-2d 20:00, T-1h, T+0, T+30m",
        spec=spec)


@lru_cache(maxsize=16)
def holiday_calendar(years: tuple[int, ...], language: str = "zh_CN") -> dict[date, str]:
    """The first day of each public holiday in mainland China (the day to greet), from the
    ``holidays`` package (lunar dates computed, not typed in); days off in lieu are left out."""
    import holidays

    out: dict[date, str] = {}
    seen: set[tuple[int, str]] = set()
    calendar_cn = holidays.country_holidays("CN", years=years, language=language)
    for day, name in sorted(calendar_cn.items()):
        if "（" in name or "(" in name:  # 补假 / 调休 days are not greetings
            continue
        if (day.year, name) in seen:
            continue
        seen.add((day.year, name))
        out[day] = name
    return out


# --- quiet hours and caps -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours | None:
        """``"22:30-08:00"``; empty means none."""
        text = text.strip()
        if not text:
            return None
        m = re.fullmatch(_HHMM + r"\s*-\s*" + _HHMM, text)
        if not m:
            raise ContentError("quiet_hours: {text!r} is not like 22:30-08:00", text=text)
        try:
            start = _clock(m.group(1), m.group(2), text)
            end = _clock(m.group(3), m.group(4), text)
        except ContentError as exc:
            raise ContentError("quiet_hours: {exc}", exc=exc) from None
        if start == end:
            raise ContentError("quiet_hours: start and end are the same")
        return cls(start, end)

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def defer(self, at: datetime, tz: ZoneInfo) -> datetime:
        """``at`` if outside quiet hours, else when they end (UTC)."""
        local = at.astimezone(tz)
        if not self.contains(local.time().replace(tzinfo=None)):
            return at
        day = local.date()
        if local.time() >= self.start and self.start > self.end:
            day += timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=tz).astimezone(UTC)


Scope = Literal["group", "member"]
Period = Literal["day", "week", "month"]


@dataclass(frozen=True, slots=True)
class Cap:
    """At most ``limit`` pushes per ``scope`` (one group or one member) per ``period``;
    ``limit="days"`` means the number of days in that month (WeCom's current rule)."""

    scope: Scope
    period: Period
    limit: int | Literal["days"]
    platform: str = "*"

    def limit_at(self, local: date) -> int:
        if self.limit == "days":
            return calendar.monthrange(local.year, local.month)[1]
        return self.limit

    def describe(self) -> str:
        who = {"group": "每群", "member": "每人"}[self.scope]
        per = {"day": "每天", "week": "每周", "month": "每月"}[self.period]
        n = "当月天数" if self.limit == "days" else str(self.limit)
        where = "" if self.platform == "*" else f"（{self.platform}）"
        return f"{who}{per}最多 {n} 次{where}"


def period_bounds(period: Period, at: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The local day / week (Monday first) / month holding ``at``, as UTC instants."""
    local = at.astimezone(tz).date()
    if period == "day":
        first, nxt = local, local + timedelta(days=1)
    elif period == "week":
        first = local - timedelta(days=local.weekday())
        nxt = first + timedelta(days=7)
    else:
        first = local.replace(day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)

    def utc(d: date) -> datetime:
        return datetime.combine(d, time(), tzinfo=tz).astimezone(UTC)

    return utc(first), utc(nxt)


@dataclass(frozen=True, slots=True)
class Placement:
    at: datetime
    status: Literal["send", "deferred", "queued", "dropped"]
    reason: str = ""


# A push's rank when caps are tight: a campaign's steps (relative to its start) and an
# operator's one-off broadcast come before routine SOP steps, so a launch notice is never
# pushed to the next morning because the daily topic took its slot.
ROUTINE = 0
CAMPAIGN = 1


@dataclass
class SendPlanner:
    """Places pushes one by one, remembering what it placed, so a whole campaign previewed
    or fanned out at once respects the caps as the sends would one after another.

    ``history`` holds the pushes already made or planned, per (scope, id), sorted.
    ``reserved`` holds pushes still to come with their rank: a push counts the ones that
    outrank it in the same cap period as already sent, so the routine push gives way.
    """

    caps: Sequence[Cap]
    tz: ZoneInfo
    quiet: QuietHours | None = None
    over_cap: Literal["queue", "drop"] = "queue"
    history: dict[tuple[str, int], list[datetime]] = field(default_factory=dict)
    reserved: dict[tuple[str, int], list[tuple[datetime, int]]] = field(default_factory=dict)
    max_queue_periods: int = 12

    def caps_for(self, platform: str, scope: Scope) -> list[Cap]:
        return [c for c in self.caps
                if c.scope == scope and c.platform in ("*", platform)]

    def reserve(self, scope: Scope, key: int, at: datetime, priority: int) -> None:
        """A push planned for later that ranks ``priority``."""
        bisect.insort(self.reserved.setdefault((scope, key), []), (at, priority))

    def place(self, platform: str, scope: Scope, key: int, at: datetime,
              priority: int = CAMPAIGN) -> Placement:
        caps = self.caps_for(platform, scope)
        sent = self.history.setdefault((scope, key), [])
        ahead = self.reserved.get((scope, key), [])
        if (at, priority) in ahead:  # this push itself: it no longer waits
            ahead.remove((at, priority))
        outranking = [t for t, p in ahead if p > priority]
        status: Literal["send", "deferred", "queued"] = "send"
        reason = ""
        when = at
        for _ in range(self.max_queue_periods):
            if self.quiet is not None:
                moved = self.quiet.defer(when, self.tz)
                if moved != when and status == "send":
                    status, reason = "deferred", "免打扰时段，顺延"
                when = moved
            full = self._full(caps, sent, when, outranking)
            if full is None:
                bisect.insort(sent, when)
                return Placement(when, status, reason)
            cap, period_end, gave_way = full
            why = f"超出频次上限：{cap.describe()}" + ("，名额留给活动推送" if gave_way else "")
            if self.over_cap == "drop" or priority < CAMPAIGN:
                # a routine step is not worth sending late: its next occurrence comes anyway
                return Placement(at, "dropped", why + ("" if self.over_cap == "drop"
                                                       else "，本次不发"))
            status, reason = "queued", why + "，顺延"
            when = period_end
        return Placement(at, "dropped", "频次上限内找不到可发送的时间")

    def _full(self, caps: Iterable[Cap], sent: list[datetime], when: datetime,
              outranking: Sequence[datetime] = ()) -> tuple[Cap, datetime, bool] | None:
        """The first cap with no room at ``when``, where its period ends, and whether the
        room went to pushes that outrank this one (still to come)."""
        for cap in caps:
            first, nxt = period_bounds(cap.period, when, self.tz)
            done = bisect.bisect_left(sent, nxt) - bisect.bisect_left(sent, first)
            coming = sum(1 for t in outranking if first <= t < nxt)
            limit = cap.limit_at(when.astimezone(self.tz).date())
            if done + coming >= limit:
                return cap, nxt, done < limit
        return None


def parse_caps(raw: Iterable[Mapping[str, Any]]) -> list[Cap]:
    out: list[Cap] = []
    for i, item in enumerate(raw):
        scope, period, limit = item.get("scope"), item.get("period"), item.get("limit")
        if scope not in ("group", "member"):
            raise ContentError("caps[{i}].scope: group or member", i=i)
        if period not in ("day", "week", "month"):
            raise ContentError("caps[{i}].period: day, week or month", i=i)
        if limit == "days":
            if period != "month":
                raise ContentError("caps[{i}].limit: 'days' only with period month", i=i)
        elif not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= 1000:
            raise ContentError("caps[{i}].limit: a whole number 0–1000, or 'days'", i=i)
        out.append(Cap(scope, period, limit, str(item.get("platform") or "*")))
    return out


def caps_to_text(caps: Iterable[Mapping[str, Any]]) -> str:
    """``group:day:6, member:week:3, wecom/group:month:days`` (the settings form)."""
    parts = []
    for c in caps:
        where = "" if c.get("platform", "*") == "*" else f"{c['platform']}/"
        parts.append(f"{where}{c['scope']}:{c['period']}:{c['limit']}")
    return ", ".join(parts)


def caps_from_text(text: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, part in enumerate(p.strip() for p in text.replace("，", ",").split(",")):
        if not part:
            continue
        platform, _sep, rest = part.rpartition("/")
        bits = rest.split(":")
        if len(bits) != 3:
            raise ContentError("caps[{i}]: {part!r} is not like group:day:6 or "
                               "wecom/group:month:days",
                               i=i, part=part)
        scope, period, limit = (b.strip() for b in bits)
        out.append({"scope": scope, "period": period, "platform": platform.strip() or "*",
                    "limit": limit if limit == "days" else int(limit) if limit.isdigit()
                    else limit})
    parse_caps(out)
    return out


_RELATIVE_DAYS = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2}
_CLOCK = r"(\d{1,2})\s*[:：点]\s*(\d{1,2})?\s*分?"
_TIME_FORMS = (
    # 明天 20:00 · 今天20点 · 后天 9点30 · 20:00 (today)
    re.compile(r"^(?P<rel>今天|今日|明天|明日|后天)?\s*" + _CLOCK + "$"),
    # 12/04 20:00 · 12-04 20:00 · 12月4日 20:00 (this year)
    re.compile(r"^(?P<m>\d{1,2})\s*[/月-]\s*(?P<d>\d{1,2})\s*日?\s*" + _CLOCK + "$"),
    # 2026/12/04 20:00 · 2026年12月4日 20点
    re.compile(r"^(?P<y>\d{4})\s*[/年.-]\s*(?P<m>\d{1,2})\s*[/月.-]\s*(?P<d>\d{1,2})\s*日?"
               r"\s*[T ]?\s*" + _CLOCK + "$"),
)


def parse_local_time(text: str, tz: ZoneInfo, field: str,
                     now: datetime | None = None) -> datetime | None:
    """A time an operator typed, in the team's zone; empty is None. Takes what people write:
    ``2026-12-04 20:00``, ``2026/12/04 20:00``, ``12/04 20:00``, ``12月4日 20:00``,
    ``明天 20:00``, ``今天20点``, ``20:00`` (today); ``now`` places the relative ones."""
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
        return value if value.tzinfo else value.replace(tzinfo=tz)
    except ValueError:
        pass
    today = (now or datetime.now(tz)).astimezone(tz).date()
    for form in _TIME_FORMS:
        match = form.match(text)
        if match is None:
            continue
        parts = match.groupdict()
        hour, minute = (int(g) if g else 0 for g in match.groups()[-2:])
        try:
            if "y" in parts or "m" in parts:
                day = date(int(parts.get("y") or today.year), int(parts["m"]), int(parts["d"]))
            else:
                day = today + timedelta(days=_RELATIVE_DAYS.get(parts.get("rel") or "今天", 0))
            return datetime.combine(day, time(hour, minute), tzinfo=tz)
        except ValueError:
            break  # 13/45, 25:00: named below like any other mistake
    raise ContentError("{field}: {text!r} is not a time like 2026-12-04 20:00, 12/04 20:00 "
                       "or 明天 20:00", field=field, text=text)


def parse_assignments(lines: Iterable[str], field: str = "variables") -> dict[str, str]:
    """``name=value`` items (one per line or per option) as a dict."""
    out: dict[str, str] = {}
    for line in lines:
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise ContentError("{field}: {strip!r} is not name=value",
                               field=field, strip=line.strip())
        out[name.strip()] = value.strip()
    return out
