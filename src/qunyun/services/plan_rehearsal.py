"""A plan rehearsed on the simulator before it goes live (F33, issue 30).

The rehearsal runs in a database of its own — a temporary SQLite file, migrated like any
other — so nothing simulated reaches the team's members, groups or reports. Into it goes
a copy of what acts on the plan's groups: the team's automation settings, word lists and
FAQs, scripts and segments, the playbooks and broadcasts (with their scheduled jobs) that
reach those groups, the plan's activity and the plan itself. It is a snapshot restored
into a throwaway database, not a second writer of the team's facts.

Then the plan's days pass an hour at a time on a simulated clock. The simulated community
(:class:`~qunyun.domain.rehearsal.Crowd`) joins through the plan's channels at its rates,
talks, pays deposits and buys; each event goes through the real path (sandbox adapter →
ingest → rules → outbox), the deposits and orders through the activity services, and the
real worker fires the playbooks and broadcasts and delivers the outbox — on the sandbox
standing in for the plan's platform, with that platform's capabilities (a WeCom plan's
group sends become staff tasks). Each push the worker delivers reaches the crowd, who
answer it, or tire of it past a few a day.

The outcome: plan versus actual computed by :func:`plans.plan_actual` on the rehearsal's
database, the forecast (the model's expected values), the staff load (tasks and pushes per
day), when each group filled, and the calibration of the simulated talk against real
groups. Seeded: the same plan and seed give the same rehearsal.
"""

from __future__ import annotations

import heapq
import math
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, func, or_, select

from qunyun.adapters.platforms.sandbox import SandboxAdapter
from qunyun.adapters.platforms.sandbox.send import SandboxStore
from qunyun.adapters.ratelimit import LocalRateLimiter
from qunyun.adapters.storage import migrate
from qunyun.adapters.storage.db import make_engine
from qunyun.adapters.storage.tables import (
    activities,
    activity_groups,
    activity_series,
    automation_settings,
    broadcasts,
    faqs,
    groups,
    identities,
    join_codes,
    members,
    memberships,
    messages,
    outbox,
    plan_stages,
    plan_targets,
    plans,
    playbook_groups,
    playbook_steps,
    playbooks,
    scheduled_jobs,
    script_versions,
    scripts,
    segments,
    staff_tasks,
    word_lists,
)
from qunyun.clock import FixedTime, utcnow
from qunyun.config import Settings
from qunyun.domain.actions import Capability, CapabilityLookup
from qunyun.domain.outbox import OutboxStatus
from qunyun.domain.planning import DEFAULTS, METRICS, RATES
from qunyun.domain.rehearsal import (
    Community,
    Crowd,
    Happening,
    Outreach,
    calibrate,
    forecast,
    reach_per_day,
)
from qunyun.domain.staff import Permission
from qunyun.services import audit, conversions, enrolments, pushes
from qunyun.services import broadcasts as broadcasts_service
from qunyun.services import plans as plans_service
from qunyun.services import playbooks as playbooks_service
from qunyun.services.automation import TEAM, effective_settings
from qunyun.services.errors import Conflict, InvalidInput, NotFound
from qunyun.services.ingest import do_ingest_event
from qunyun.services.users import SYSTEM, Actor

MONEY_METRICS = ("enrolled", "deposit", "purchase")
MAX_JOINS = 20_000  # a rehearsal is a sample: beyond this it takes minutes, not seconds
# what a page or an API request waits for (about half a minute at most here); bigger plans
# rehearse from the command line
REQUEST_LIMITS = {"joins": 5_000, "days": 45}
MAX_WORKER_ROUNDS = 20  # worker ticks at one simulated hour before the clock moves on
PUSHED = (OutboxStatus.DELIVERED, OutboxStatus.STAFF_TASK)


def _stage_days(plan: Mapping[str, Any], kind: str) -> list[int]:
    """The plan's days (as indexes) inside its stages of ``kind`` (stages lie inside the
    plan's dates: the plans service keeps them there)."""
    first = date.fromisoformat(plan["starts_on"])

    def offset(day: Any) -> int:
        return (date.fromisoformat(str(day)) - first).days

    return sorted({i for stage in plan["stages"] if stage["kind"] == kind
                   for i in range(offset(stage["starts_on"]), offset(stage["ends_on"]) + 1)})


def _plan_groups(conn: Connection, actor: Actor, plan: Mapping[str, Any]
                 ) -> list[dict[str, Any]]:
    ids = plans_service.plan_group_ids(conn, actor=actor, plan=plan)
    if not ids:
        raise InvalidInput("plan {name}: no groups to rehearse in — give the plan groups or "
                           "an activity with groups", name=plan["name"])
    rows = {int(r["id"]): dict(r) for r in conn.execute(
        select(groups).where(groups.c.id.in_(ids))).mappings()}
    return [rows[i] for i in ids if i in rows]


def outreach_of(conn: Connection, *, actor: Actor, plan: Mapping[str, Any],
                group_rows: Sequence[Mapping[str, Any]]) -> Outreach:
    """The model's view of a plan: its days, whom it reaches when (the goal's reach over
    the recruiting days, or its join targets worked back through the join rate), the
    rates, the launch days, the channels of its groups' join codes, the groups' room."""
    first = date.fromisoformat(plan["starts_on"])
    days = tuple((first + timedelta(days=i)).isoformat() for i in range(int(plan["days"])))
    goal = plan["goal"] or {}
    answer, inputs = goal.get("answer") or {}, goal.get("inputs") or {}
    rates = {name: float((answer.get("rates") or {}).get(name, {}).get("value")
                         or DEFAULTS[name]) for name in RATES}
    recruiting = _stage_days(plan, "recruiting")
    span = (recruiting[0], recruiting[-1]) if recruiting else (0, len(days) - 1)
    if answer:
        staff, contacts = inputs.get("staff"), inputs.get("contacts_per_day")
        per_day = int(staff) * int(contacts) if staff and contacts else None
        reach = reach_per_day(len(days), span, int(answer["reach"]), per_day)
    else:
        targets = dict(conn.execute(select(plan_targets.c.day, plan_targets.c.value).where(
            plan_targets.c.plan_id == plan["id"], plan_targets.c.metric == "joined")).all())
        reach = [round(int(targets.get(d, 0)) / rates["join_rate"]) for d in days]
    if not sum(reach):
        raise InvalidInput("plan {name}: no goal and no join targets — the rehearsal needs "
                           "to know how many people the plan reaches", name=plan["name"])
    capacity = int(answer.get("capacity") or 0)
    fill = float(answer.get("fill") or DEFAULTS["fill"])
    room = tuple(max(1, int(min(capacity or int(g["capacity"]), int(g["capacity"])) * fill))
                 for g in group_rows)
    chats = {(str(g["platform"]), str(g["external_id"])) for g in group_rows}
    channels = sorted({str(c["channel"]) for c in conn.execute(select(
        join_codes.c.platform, join_codes.c.channel, join_codes.c.chat_ids).where(
        join_codes.c.state == "active")).mappings()
        if any((str(c["platform"]), str(chat)) in chats for chat in c["chat_ids"] or ())})
    inside: dict[int, int] = dict(conn.execute(select(memberships.c.group_id, func.count()).where(
        memberships.c.group_id.in_([int(g["id"]) for g in group_rows]),
        memberships.c.left_at.is_(None)).group_by(memberships.c.group_id)).all())
    return Outreach(days=days, reach=tuple(reach), join_rate=rates["join_rate"],
                    deposit_rate=rates["deposit_rate"], purchase_rate=rates["purchase_rate"],
                    launch=tuple(_stage_days(plan, "launch")),
                    channels=tuple(channels) or (f"plan-{plan['id']}",), room=room,
                    already=tuple(int(inside.get(g["id"], 0)) for g in group_rows))


def _rows(conn: Connection, table: Table, *where: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(table).where(*where)).mappings()]


def _settings_rows(conn: Connection, gids: Sequence[int], platforms: set[str]
                   ) -> list[dict[str, Any]]:
    """The team's and the groups' automation settings; the push caps written out in full
    (defaults included) with the plan's platforms' own caps (WeCom's monthly rule) turned
    into the sandbox's, which stands in for them."""
    rows = {int(r["group_id"]): r for r in _rows(conn, automation_settings,
                                                  automation_settings.c.group_id.in_(
                                                      [TEAM, *gids]))}
    team = rows.get(TEAM) or {"group_id": TEAM, "settings": {}, "updated_at": utcnow(),
                              "updated_by": "rehearsal"}
    caps = [{**c.model_dump(), "platform": "sandbox" if c.platform in platforms
             else c.platform} for c in effective_settings(conn, None).broadcast.caps]
    settings = dict(team["settings"] or {})
    settings["broadcast"] = {**dict(settings.get("broadcast") or {}), "caps": caps}
    rows[TEAM] = {**team, "settings": settings}
    return list(rows.values())


def _snapshot(conn: Connection, plan: Mapping[str, Any], group_rows: Sequence[Mapping[str, Any]]
              ) -> list[tuple[Table, list[dict[str, Any]]]]:
    """What acts on the plan's groups, in the order foreign keys need: the rehearsal's
    database starts from these rows. The groups become sandbox groups (``g<id>``)."""
    gids = [int(g["id"]) for g in group_rows]
    out: list[tuple[Table, list[dict[str, Any]]]] = [
        (groups, [{**g, "platform": "sandbox", "external_id": f"g{g['id']}",
                   "owner_member_id": None} for g in group_rows]),
        (automation_settings, _settings_rows(conn, gids, {str(g["platform"])
                                                          for g in group_rows})),
        (word_lists, _rows(conn, word_lists)),
        (faqs, _rows(conn, faqs, or_(faqs.c.group_id.is_(None), faqs.c.group_id.in_(gids)))),
        (scripts, _rows(conn, scripts)),
        (script_versions, _rows(conn, script_versions)),
        (segments, _rows(conn, segments)),
    ]
    if plan["activity_id"] is not None:
        act = _rows(conn, activities, activities.c.id == plan["activity_id"])
        out += [(activity_series, _rows(conn, activity_series,
                                        activity_series.c.id == act[0]["series_id"])),
                (activities, act),
                (activity_groups, _rows(conn, activity_groups,
                                        activity_groups.c.activity_id == plan["activity_id"],
                                        activity_groups.c.group_id.in_(gids)))]
    attached: dict[int, set[int]] = {}
    for pid, gid in conn.execute(select(playbook_groups.c.playbook_id,
                                        playbook_groups.c.group_id)):
        attached.setdefault(int(pid), set()).add(int(gid))
    kept = [p for p in _rows(conn, playbooks, playbooks.c.status == "active")
            if int(p["id"]) not in attached or attached[int(p["id"])] & set(gids)]
    pids = [int(p["id"]) for p in kept]
    casts = []
    for b in _rows(conn, broadcasts, broadcasts.c.status == "scheduled"):
        target = dict(b["target"] or {})
        if "groups" in target:
            target["groups"] = [g for g in target["groups"] if g in gids]
            if not target["groups"]:
                continue
        casts.append({**b, "target": target})
    bids = {int(b["id"]) for b in casts}
    jobs = [j for j in _rows(conn, scheduled_jobs, scheduled_jobs.c.status == "active",
                             scheduled_jobs.c.kind.in_((playbooks_service.JOB_KIND,
                                                        broadcasts_service.JOB_KIND)),
                             or_(scheduled_jobs.c.group_id.is_(None),
                                 scheduled_jobs.c.group_id.in_(gids)))
            if int((j["payload"] or {}).get("playbook_id") or 0) in pids
            or int((j["payload"] or {}).get("broadcast_id") or 0) in bids]
    plan_row = _rows(conn, plans, plans.c.id == plan["id"])
    out += [(playbooks, kept),
            (playbook_steps, _rows(conn, playbook_steps, playbook_steps.c.playbook_id.in_(pids))),
            (playbook_groups, _rows(conn, playbook_groups, playbook_groups.c.playbook_id.in_(pids),
                                    playbook_groups.c.group_id.in_(gids))),
            (broadcasts, casts),
            (scheduled_jobs, [{**j, "lease_until": None, "claimed_by": None} for j in jobs]),
            (plans, [{**r, "group_ids": gids} for r in plan_row]),
            (plan_stages, _rows(conn, plan_stages, plan_stages.c.plan_id == plan["id"])),
            (plan_targets, _rows(conn, plan_targets, plan_targets.c.plan_id == plan["id"]))]
    return out


def _capabilities(lookup: CapabilityLookup, group_rows: Iterable[Mapping[str, Any]]
                  ) -> frozenset[Capability]:
    """What every platform of the plan's groups can do (a mixed plan: the least of them)."""
    found: frozenset[Capability] | None = None
    for platform in {str(g["platform"]) for g in group_rows}:
        caps = lookup(platform)
        found = caps if found is None else found & caps
    return found or frozenset()


class _Run:
    """One rehearsal's database, runtime, crowd and clock."""

    def __init__(self, folder: Path, *, plan: Mapping[str, Any], outreach: Outreach,
                 group_ids: Sequence[int], caps: frozenset[Capability], seed: int,
                 settings: Settings) -> None:
        # here, not at the top: the runtime and the worker import the services
        from qunyun.bootstrap import build_runtime
        from qunyun.worker import Worker

        self.tz = settings.tz
        self.plan = plan
        self.outreach = outreach
        self.group_ids = list(group_ids)
        engine = make_engine(f"sqlite:///{folder / 'rehearsal.db'}")
        migrate.upgrade(engine)
        scratch = Settings(data_dir=folder, database_url=f"sqlite:///{folder / 'rehearsal.db'}",
                           secret_key="rehearsal", timezone=settings.timezone,
                           language=settings.language, redis_url="",
                           rate_platform_per_second=1e6, rate_group_per_minute=1e6,
                           outbox_batch_size=500)
        adapter = SandboxAdapter(SandboxStore(str(folder / "sandbox.db")), capabilities=caps)
        self.rt = build_runtime(scratch, engine=engine, adapters={"sandbox": adapter},
                                limiter=LocalRateLimiter())
        self.start = datetime.combine(date.fromisoformat(outreach.days[0]), time.min,
                                      tzinfo=self.tz)
        self.rt.now = FixedTime(self.start)
        self.worker = Worker(self.rt, worker_id="rehearsal")
        self.crowd = Crowd(outreach, Community(), seed=seed)
        self.queue: list[tuple[datetime, int, Happening]] = []
        self.serial = 0
        self.pushes_seen = 0
        self.members: dict[int, int] = {}  # crowd number → member id
        self.present_by_day: list[int] = []
        self.lost_money = 0
        self.events = 0  # joins, messages, leaves and payments put through
        self.activity_id = plan["activity_id"]
        self.deposit_fen = self.price_fen = 0

    def load(self, snapshot: Sequence[tuple[Table, list[dict[str, Any]]]]) -> None:
        with self.rt.uow.write() as conn:
            for table, rows in snapshot:
                if rows:
                    conn.execute(table.insert(), rows)
            if self.activity_id is not None:
                act = conn.execute(select(activities.c.deposit_fen, activities.c.price_fen)
                                   .where(activities.c.id == self.activity_id)).one()
                self.deposit_fen, self.price_fen = int(act[0]), int(act[1])
        price = ((self.plan["goal"] or {}).get("inputs") or {}).get("price")
        if price:
            self.price_fen = round(float(price) * 100)

    def at(self, h: Happening) -> datetime:
        return self.start + timedelta(days=h.day, minutes=h.minute)

    def put(self, items: Iterable[Happening]) -> None:
        for h in items:
            self.serial += 1
            heapq.heappush(self.queue, (self.at(h), self.serial, h))

    def raw(self, h: Happening) -> dict[str, Any] | None:
        person = self.crowd.people[h.person]
        base = {"id": f"rh-{self.serial}-{h.person}-{h.kind}-{h.day}-{h.minute}",
                "at": self.at(h).isoformat(), "chat": f"g{self.group_ids[h.group]}",
                "user": f"rh-u{h.person}"}
        if h.kind == "join":
            return {**base, "type": "join", "user_name": person.name, "scene": "qr",
                    "channel": h.channel}
        if person.left:
            return None  # gone before this moment
        if h.kind == "leave":
            self.crowd.left(h.person)
            return {**base, "type": "leave"}
        self.serial += 1
        return {**base, "id": f"{base['id']}-{self.serial}", "type": "message",
                "user_name": person.name, "message_id": f"m{self.serial}", "text": h.text}

    def money(self, conn: Connection, h: Happening) -> None:
        """A deposit (with its enrolment) or an order, through the activity services."""
        member_id = self.members.get(h.person)
        if member_id is None:
            member_id = conn.execute(select(identities.c.member_id).where(
                identities.c.platform == "sandbox",
                identities.c.external_id == f"rh-u{h.person}")).scalar()
            if member_id is None:
                self.lost_money += 1
                return
            self.members[h.person] = member_id = int(member_id)
        when = self.at(h)
        try:
            if h.kind == "deposit":
                enrolments.do_enrol(conn, actor=SYSTEM, activity_id=self.activity_id,
                                    member_id=member_id, source="demo", at=when)
                conversions.do_record_conversion(
                    conn, actor=SYSTEM, kind="deposit", amount_fen=self.deposit_fen,
                    activity_id=self.activity_id, member_id=member_id,
                    group_id=self.group_ids[h.group], at=when, source="demo")
            else:
                conversions.do_record_conversion(
                    conn, actor=SYSTEM, kind="order", amount_fen=self.price_fen,
                    activity_id=self.activity_id, member_id=member_id,
                    group_id=self.group_ids[h.group], at=when, source="demo")
        except (Conflict, InvalidInput, NotFound):
            self.lost_money += 1  # the activity refused (full, closed): counted, not hidden

    def hour(self, until: datetime) -> None:
        """Everything due before ``until`` through the real path; then the worker at
        ``until``; then the crowd hears the pushes it delivered."""
        sandbox = self.rt.adapters["sandbox"]
        config = self.rt.ingest_config
        with self.rt.uow.write() as conn:
            while self.queue and self.queue[0][0] < until:
                when, _n, h = heapq.heappop(self.queue)
                self.rt.now = FixedTime(when)
                if h.kind in ("deposit", "purchase"):
                    if self.activity_id is not None:
                        self.events += 1
                        self.money(conn, h)
                    continue
                raw = self.raw(h)
                if raw is None:
                    continue
                self.events += 1
                for event in sandbox.parse(raw).events:
                    do_ingest_event(conn, event, config=config, received_at=when)
        self.rt.now = FixedTime(until)
        for _ in range(MAX_WORKER_ROUNDS):
            tick = self.worker.tick()
            if not (tick.fired or tick.stats.delivered or tick.stats.retried):
                break
        with self.rt.uow.read() as conn:
            pushed = conn.execute(select(outbox.c.id, outbox.c.group_id).where(
                outbox.c.id > self.pushes_seen, pushes.is_push(),
                outbox.c.member_id.is_(None), outbox.c.group_id.is_not(None),
                outbox.c.status.in_([s.value for s in PUSHED])).order_by(outbox.c.id)).all()
        local = until.astimezone(self.tz) - timedelta(minutes=1)
        d = (local.date() - self.start.date()).days
        for push_id, group_id in pushed:
            self.pushes_seen = max(self.pushes_seen, int(push_id))
            if int(group_id) in self.group_ids and 0 <= d < len(self.outreach.days):
                self.put(self.crowd.pushed(self.group_ids.index(int(group_id)), d,
                                           local.hour * 60 + local.minute))

    def run(self) -> None:
        self.put(self.crowd.existing())
        for d in range(len(self.outreach.days)):
            self.put(self.crowd.day(d))
            for hour in range(1, 25):
                self.hour(self.start + timedelta(days=d, hours=hour))
            self.present_by_day.append(sum(self.crowd.present))

    def outcome(self, plan_id: int) -> dict[str, Any]:
        end = self.start + timedelta(days=len(self.outreach.days))
        with self.rt.uow.read() as conn:
            actual = plans_service.plan_actual(conn, actor=SYSTEM, plan_id=plan_id,
                                               tz=self.tz, now=end + timedelta(days=1))
            tasks = _per_day(conn, staff_tasks.c.created_at, self.tz, staff_tasks.c.kind)
            by_day = _per_day(conn, func.coalesce(outbox.c.delivered_at,
                                                  outbox.c.next_attempt_at), self.tz, None,
                              pushes.is_push(),
                              outbox.c.status.in_([s.value for s in PUSHED]))
            names = dict(conn.execute(select(groups.c.id, groups.c.name).where(
                groups.c.id.in_(self.group_ids))).all())
            calibration = _calibration(conn, self.present_by_day, actual["days"])
        return {"actual": actual, "tasks": tasks, "pushes": by_day, "names": names,
                "calibration": calibration}


def _per_day(conn: Connection, column: Any, tz: ZoneInfo, kind: Any, *where: Any
             ) -> dict[str, Counter[str]]:
    """Rows per team-local day (and per ``kind`` when given)."""
    out: dict[str, Counter[str]] = {}
    cols = [column] + ([kind] if kind is not None else [])
    for row in conn.execute(select(*cols).where(*where)):
        day = row[0].astimezone(tz).date().isoformat()
        out.setdefault(day, Counter())[str(row[1]) if kind is not None else "all"] += 1
    return out


def _calibration(conn: Connection, present: Sequence[int], days: Sequence[Mapping[str, Any]]
                 ) -> list[dict[str, Any]]:
    """The stored talk's Gini per member (everyone who joined; lurkers are zeros), the
    median day's share of members present who spoke, and the burstiness of the gaps
    between messages in each group."""
    counts = Counter(int(m) for m in conn.execute(select(messages.c.member_id).where(
        messages.c.member_id.is_not(None))).scalars())
    people = [int(m) for m in conn.execute(select(members.c.id).join(
        identities, identities.c.member_id == members.c.id).where(
        identities.c.external_id.like("rh-u%"))).scalars()]
    shares = [d["active"]["actual"] / n for d, n in zip(days, present, strict=False) if n]
    gaps: list[float] = []
    last: dict[int, datetime] = {}
    for group_id, sent in conn.execute(select(messages.c.group_id, messages.c.sent_at)
                                       .order_by(messages.c.group_id, messages.c.sent_at)):
        if group_id in last:
            gaps.append((sent - last[group_id]).total_seconds())
        last[group_id] = sent
    return [{"name": c.name, "value": c.value, "low": c.low, "high": c.high, "ok": c.ok}
            for c in calibrate([counts.get(p, 0) for p in people], shares, gaps)]


def do_rehearse_plan(uow: Any, *, actor: Actor, plan_id: int, seed: int, settings: Settings,
                     capabilities: CapabilityLookup, max_joins: int = MAX_JOINS,
                     max_days: int | None = None) -> dict[str, Any]:
    """Rehearse ``plan_id`` on the simulator (seeded); the rehearsal's database is thrown
    away afterwards, the team's gets one audit row. A request passes lower limits
    (:data:`REQUEST_LIMITS`) than the command line, which waits as long as it takes."""
    actor.require(Permission.OPERATE)
    if not 0 <= seed <= 2**31 - 1:
        raise InvalidInput("seed: a whole number from 0 to 2147483647")
    with uow.read() as conn:
        plan = plans_service.access_plan(conn, actor=actor, plan_id=plan_id)
        group_rows = _plan_groups(conn, actor, plan)
        outreach = outreach_of(conn, actor=actor, plan=plan, group_rows=group_rows)
        snapshot = _snapshot(conn, plan, group_rows)
    # the members already in the groups are simulated too (as joins before the plan)
    expected = sum(outreach.reach) * outreach.join_rate + sum(outreach.already)
    if expected > max_joins:
        raise InvalidInput("rehearsal: at most {high} joins, and this plan expects {n} — "
                           "rehearse a smaller share of it", high=max_joins, n=round(expected))
    if max_days is not None and len(outreach.days) > max_days:
        raise InvalidInput("rehearsal: at most {high} days here, and this plan has {n} — "
                           "rehearse it with the command line (qunyun plan rehearse)",
                           high=max_days, n=len(outreach.days))
    with tempfile.TemporaryDirectory(prefix="qunyun-rehearsal-") as folder:
        run = _Run(Path(folder), plan=plan, outreach=outreach,
                   group_ids=[int(g["id"]) for g in group_rows],
                   caps=_capabilities(capabilities, group_rows), seed=seed, settings=settings)
        try:
            run.load(snapshot)
            run.run()
            found = run.outcome(plan_id)
        finally:
            run.rt.close()
    result = _report(plan, outreach, run, found, seed)
    with uow.write() as conn:
        audit.record(conn, actor=actor.label, action="plan.rehearse", object_type="plan",
                     object_id=plan_id, detail={"seed": seed, **{
                         m: result["totals"][m]["simulated"] for m in METRICS}})
    return result


def _report(plan: Mapping[str, Any], o: Outreach, run: _Run, found: Mapping[str, Any],
            seed: int) -> dict[str, Any]:
    expected = forecast(o, run.crowd.community)
    money = plan["activity_id"] is not None
    # without an activity nothing counts money: those figures are unknown, not short
    counted = [m for m in METRICS if money or m not in MONEY_METRICS]
    rows = []
    for i, day in enumerate(found["actual"]["days"]):
        rows.append({
            "day": day["day"], "reached": o.reach[i],
            "target": {m: day[m]["target"] for m in METRICS},
            "forecast": {m: round(expected[i][m], 1) for m in METRICS},
            "simulated": {m: day[m]["actual"] if m in counted else None for m in METRICS},
            "short": [m for m in counted if day[m]["short"]],
            "tasks": sum(found["tasks"].get(day["day"], Counter()).values()),
            "pushes": sum(found["pushes"].get(day["day"], Counter()).values()),
            "members": run.present_by_day[i]})
    tasks_by_kind: Counter[str] = Counter()
    for counter in found["tasks"].values():
        tasks_by_kind.update(counter)
    tired = sum(1 for n in run.crowd.pushes.values() if n > run.crowd.community.push_tolerance)
    peak = max(run.present_by_day, default=0)
    room = sum(o.room)
    return {
        "plan_id": int(plan["id"]), "name": plan["name"], "seed": seed,
        "channels": list(o.channels), "rates": {"join_rate": o.join_rate,
                                                "deposit_rate": o.deposit_rate,
                                                "purchase_rate": o.purchase_rate},
        "money_counted": money, "money_lost": run.lost_money, "events": run.events,
        "days": rows,
        "totals": {m: {"target": sum(r["target"][m] or 0 for r in rows),
                       "forecast": round(sum(e[m] for e in expected), 1),
                       "simulated": sum(r["simulated"][m] for r in rows)
                       if m in counted else None} for m in METRICS},
        "short": [{"day": r["day"], "metric": m, "target": r["target"][m],
                   "simulated": r["simulated"][m]} for r in rows for m in r["short"]],
        # the most members the groups held at a day's end against the room they have: the
        # groups a plan still has to make (at the average room of its groups)
        "room": {"members": peak, "room": room,
                 "groups_short": max(0, math.ceil(peak * len(o.room) / room) - len(o.room))
                 if room else 0},
        "staff": {"tasks": sum(tasks_by_kind.values()), "tasks_by_kind": dict(tasks_by_kind),
                  "busiest_day": max(rows, key=lambda r: r["tasks"])["day"] if rows else None,
                  "most_tasks_in_a_day": max((r["tasks"] for r in rows), default=0),
                  "pushes": sum(r["pushes"] for r in rows)},
        "reactions": {"tired_group_days": tired,
                      "muted": sum(p.muted for p in run.crowd.people),
                      "left": sum(p.left for p in run.crowd.people)},
        "groups": [{"id": gid, "name": found["names"].get(gid, ""), "room": o.room[g],
                    "members": run.crowd.present[g],
                    "already": o.already[g] if o.already else 0,
                    "full_on": (o.days[run.crowd.full_on[g]]
                                if g in run.crowd.full_on else None)}
                   for g, gid in enumerate(run.group_ids)],
        "calibration": found["calibration"]}


__all__ = ["MAX_JOINS", "REQUEST_LIMITS", "do_rehearse_plan", "outreach_of"]
