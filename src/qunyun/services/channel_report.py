"""Which channel (or inviter) brought the members who enrolled, paid and purchased, across
activities: the operator's "where did my buyers come from" in one table.

A member's touches are their joins (the join code or poster channel they came through, else
the member or staff who invited them) and the channel a sign-up form or an order names.
Two readings, always stated with the answer:

- **first touch**: everything a member did is credited to their first recorded join;
- **last touch**: each outcome is credited to the latest touch at or before it (the channel
  an enrolment or order names itself, else the latest join before it).

Counts are distinct members per channel and outcome; revenue is the orders' amounts (fen).
The period selects members by their first join in the team's days; outcomes are counted
whenever they happened, so a March poster still gets credit for an April purchase."""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import (
    activities,
    conversions,
    enrolments,
    members,
    memberships,
)
from qunyun.domain.staff import Permission
from qunyun.i18n import translate
from qunyun.services.errors import InvalidInput
from qunyun.services.members import staff_among
from qunyun.services.users import Actor

MODELS = ("first", "last")
DIMENSIONS = ("channel", "inviter")
OUTCOMES = ("members", "enrolled", "paid", "purchased")
NO_SOURCE = ""  # joined with no channel and no inviter (searched, scanned a group's own code)


@dataclass
class ChannelLine:
    """One channel's (or inviter's) members and outcomes."""

    key: str
    label: str
    staff: bool = False
    counts: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    revenue_fen: int = 0

    def to_json(self) -> dict[str, Any]:
        members_ = len(self.counts["members"])
        enrolled = len(self.counts["enrolled"])
        return {"key": self.key, "label": self.label, "staff": self.staff,
                **{k: len(self.counts[k]) for k in OUTCOMES},
                "revenue_fen": self.revenue_fen, "revenue": self.revenue_fen / 100,
                "enrol_rate": round(enrolled / members_, 4) if members_ else None}


@dataclass(frozen=True)
class ChannelReport:
    model: str
    by: str
    since: date | None
    until: date | None
    activity: str | None
    lines: list[dict[str, Any]]
    totals: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "by": self.by,
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
                "activity": self.activity, "lines": self.lines, "totals": self.totals}

    @property
    def winner(self) -> dict[str, Any] | None:
        """The line that brought the most enrolled members (ties: more members, then name)."""
        named = [ln for ln in self.lines if ln["key"] != NO_SOURCE and ln["enrolled"]]
        return max(named, key=lambda ln: (ln["enrolled"], ln["members"], ln["label"]),
                   default=None)


def get_channel_report(conn: Connection, *, actor: Actor, tz: ZoneInfo, model: str = "first",
                       by: str = "channel", since: date | None = None,
                       until: date | None = None, activity: str | None = None
                       ) -> ChannelReport:
    """The channel report for members who first joined between ``since`` and ``until`` (the
    team's days, both included; open ends allowed), outcomes limited to one activity issue
    (code) when given."""
    actor.require(Permission.VIEW)
    if model not in MODELS:
        raise InvalidInput("model: first or last, not {model!r}", model=model)
    if by not in DIMENSIONS:
        raise InvalidInput("by: channel or inviter, not {by!r}", by=by)
    if since and until and since > until:
        raise InvalidInput("the period starts after it ends ({since} > {until})",
                           since=since.isoformat(), until=until.isoformat())
    activity_id = None
    if activity:
        activity_id = conn.execute(select(activities.c.id).where(
            activities.c.code == activity)).scalar()
        if activity_id is None:
            raise InvalidInput("no activity issue with code {code!r}", code=activity)

    touches = _touches(conn, by)
    firsts = {m: ts[0] for m, ts in touches.items()}
    start = datetime.combine(since, time(), tz) if since else None
    end = datetime.combine(until + timedelta(days=1), time(), tz) if until else None
    chosen = {m for m, (at, _k) in firsts.items()
              if (start is None or at >= start) and (end is None or at < end)}

    names = _labels(conn, by, {k for ts in touches.values() for _a, k in ts})
    staff = staff_among(conn, [int(k) for k in names if k.isdigit()]) if by == "inviter" else set()
    lines: dict[str, ChannelLine] = {}

    def line(key: str) -> ChannelLine:
        if key not in lines:
            lines[key] = ChannelLine(key, names.get(key, key),
                                     staff=key.isdigit() and int(key) in staff)
        return lines[key]

    def credit(member: int, at: datetime | None, named: str = "") -> str:
        if model == "first" or member not in touches:
            return firsts[member][1] if member in firsts else NO_SOURCE
        if named and by == "channel":
            return named
        ts = touches[member]
        i = bisect.bisect_right([t for t, _k in ts], at) if at else len(ts)
        return ts[max(i - 1, 0)][1]

    for member in chosen:
        line(credit(member, None) if model == "first" else touches[member][-1][1]) \
            .counts["members"].add(member)
    stmt = select(enrolments.c.member_id, enrolments.c.enrolled_at, enrolments.c.channel,
                  enrolments.c.deposit_fen).where(enrolments.c.status == "enrolled")
    if activity_id is not None:
        stmt = stmt.where(enrolments.c.activity_id == activity_id)
    for e in conn.execute(stmt):
        if e.member_id in chosen:
            ln = line(credit(e.member_id, e.enrolled_at, e.channel))
            ln.counts["enrolled"].add(e.member_id)
            if e.deposit_fen > 0:
                ln.counts["paid"].add(e.member_id)
    stmt2 = select(conversions.c.member_id, conversions.c.kind, conversions.c.amount_fen,
                   conversions.c.occurred_at, conversions.c.channel).where(
        conversions.c.kind.in_(("deposit", "order")), conversions.c.member_id.is_not(None))
    if activity_id is not None:
        stmt2 = stmt2.where(conversions.c.activity_id == activity_id)
    for c in conn.execute(stmt2):
        if c.member_id in chosen:
            ln = line(credit(c.member_id, c.occurred_at, c.channel))
            if c.kind == "deposit":
                ln.counts["paid"].add(c.member_id)
            else:
                ln.counts["purchased"].add(c.member_id)
                ln.revenue_fen += c.amount_fen
    rows = sorted((ln.to_json() for ln in lines.values()),
                  key=lambda r: (-r["enrolled"], -r["paid"], -r["members"], r["label"]))
    totals = {k: sum(r[k] for r in rows) for k in (*OUTCOMES, "revenue_fen")}
    totals["revenue"] = totals["revenue_fen"] / 100
    return ChannelReport(model, by, since, until, activity, rows, totals)


def _touches(conn: Connection, by: str) -> dict[int, list[tuple[datetime, str]]]:
    """Each member's joins in time order as (when, key): the channel (else ``inviter:N``
    for a channel report) or the inviter's member id."""
    found: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for m in conn.execute(select(memberships.c.member_id, memberships.c.joined_at,
                                 memberships.c.channel, memberships.c.inviter_member_id)
                          .where(memberships.c.join_observed)
                          .order_by(memberships.c.joined_at, memberships.c.id)):
        inviter = str(m.inviter_member_id) if m.inviter_member_id is not None else NO_SOURCE
        key = inviter if by == "inviter" else (m.channel or (
            f"inviter:{inviter}" if inviter else NO_SOURCE))
        found[int(m.member_id)].append((m.joined_at, key))
    return found


def _labels(conn: Connection, by: str, keys: set[str]) -> dict[str, str]:
    """Channels keep the name the operator gave them; inviters are named with their number."""
    ids = {int(k.removeprefix("inviter:")) for k in keys
           if k.removeprefix("inviter:").isdigit()}
    people = {int(r.id): f"{r.display_name or '#'}（{r.number}）" for r in conn.execute(
        select(members.c.id, members.c.display_name, members.c.number)
        .where(members.c.id.in_(ids)))} if ids else {}
    labels = {k: k for k in keys}
    for k in keys:
        raw = k.removeprefix("inviter:")
        if raw.isdigit() and int(raw) in people:
            labels[k] = people[int(raw)] if by == "inviter" else f"@{people[int(raw)]}"
    return labels


def table_of(report: dict[str, Any], language: str) -> tuple[list[str], list[list[Any]]]:
    """The report as a header and rows in the reader's words: the command's table, the
    CSV download and the page read the same columns."""
    header = [translate(f"report.col.{k}", language) for k in (
        report["by"], "members", "enrolled", "enrol_rate", "paid", "purchased", "revenue")]
    rows = [[line["label"] or translate("report.no_source", language), line["members"],
             line["enrolled"],
             "" if line["enrol_rate"] is None else f"{line['enrol_rate']:.1%}",
             line["paid"], line["purchased"], f"{line['revenue']:.2f}"]
            for line in report["lines"]]
    return header, rows
