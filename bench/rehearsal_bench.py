"""A plan's rehearsal on the simulator: how long seed 000's launch takes to rehearse, and
whether the simulated talk looks like real groups'.

**Speed.** Seed 000's plan in a fresh SQLite team database: six groups of 100 (room 90
each), a 12-day plan over an activity with a deposit, its goal worked back from 20
deposits (5 staff × 120 contacts a day → 5,000 reached, 500 members), recruiting on days
1–9, launch on day 11; a daily 20:00 notice to every group while recruiting and four more
notices on launch day (one over the team's tolerance). The rehearsal is timed end to end
(snapshot, migration, twelve days an hour at a time through the real path and worker,
plan versus actual). **Baseline:** the plain community simulator (``qunyun simulate``:
the same path, no worker, no clock) putting a community of the same size — 500 members,
six groups, 12 days — through ingest; events per second compared.

**Calibration.** The rehearsal's crowd over ten seeds (the pure model, no database) against
two references: the bounds in ``domain/rehearsal.py`` (a real 723-member WeChat group's
Gini 0.89) and ten real samples of the #ubuntu IRC channel from ``../shared/data`` (each a
few hours: Gini over its speakers and the people who joined, burstiness of the gaps
between messages at the log's minute resolution). The IRC figures are printed when the
data is beside the project, skipped otherwise.

    .venv/bin/python bench/rehearsal_bench.py [--seeds 10] [--json bench/results/rehearsal.json]
"""

from __future__ import annotations

import argparse
import glob
import json
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from outbox_bench import machine

from qunyun.adapters.platforms.sandbox import SandboxAdapter
from qunyun.adapters.platforms.sandbox.send import SandboxStore
from qunyun.adapters.platforms.sandbox.simulate import Scenario
from qunyun.adapters.ratelimit import LocalRateLimiter
from qunyun.adapters.storage import migrate
from qunyun.adapters.storage.db import make_engine
from qunyun.bootstrap import build_runtime
from qunyun.config import Settings
from qunyun.domain.groups import gini
from qunyun.domain.rehearsal import Crowd, Outreach, burstiness, calibrate, reach_per_day
from qunyun.services import activities, broadcasts, plan_rehearsal, plans
from qunyun.services.simulation import run_simulation
from qunyun.services.users import SYSTEM

TZ = ZoneInfo("Asia/Shanghai")
IRC = Path(__file__).resolve().parents[2] / "shared" / "data" / "irc_ubuntu" / "dev"
FIRST = date(2027, 3, 1)
DAYS = 12


def runtime_at(folder: Path) -> Any:
    engine = make_engine(f"sqlite:///{folder / 'team.db'}")
    migrate.upgrade(engine)
    settings = Settings(data_dir=folder, secret_key="bench", database_url="")
    return build_runtime(settings, engine=engine, adapters={"sandbox": SandboxAdapter(
        SandboxStore(str(folder / "sandbox.db")))}, limiter=LocalRateLimiter())


def seed_000(rt: Any) -> int:
    """Seed 000's plan over six sandbox groups; returns its id."""
    from qunyun.adapters.platforms.sandbox import parse as sandbox_parse
    from qunyun.services.ingest import do_ingest_event

    before = datetime.combine(FIRST - timedelta(days=20), clock_time(12), tzinfo=TZ)
    with rt.uow.write() as conn:
        gids = []
        for g in range(6):
            raw = {"type": "join", "id": f"own{g}", "at": before.isoformat(),
                   "chat": f"launch{g}", "chat_name": f"新品发售{g + 1}群", "user": f"owner{g}",
                   "user_name": "顾问小林", "scene": "invite"}
            for ev in sandbox_parse.parse(raw).events:
                gids.append(do_ingest_event(conn, ev, config=rt.ingest_config,
                                            received_at=before).group_id)
        activities.do_create_series(conn, actor=SYSTEM, code="L", name="新品发售")
        camp = activities.do_create_activity(
            conn, actor=SYSTEM, series="L", opens_on=FIRST, starts_on=FIRST,
            ends_on=FIRST + timedelta(days=DAYS), group_ids=gids, deposit_fen=9900,
            price_fen=399900)
        plan = plans.do_create_plan(
            conn, actor=SYSTEM, name="三期发售", starts_on=FIRST,
            ends_on=FIRST + timedelta(days=DAYS - 1), activity=camp,
            goal={"target_deposits": 20, "join_rate": 0.1, "deposit_rate": 0.04,
                  "capacity": 100, "fill": 0.9, "staff": 5, "contacts_per_day": 120},
            tz=TZ, now=before)
        pid = int(plan["id"])
        for kind, first, last in (("recruiting", 0, 8), ("launch", 10, 10),
                                  ("follow_up", 11, 11)):
            plans.do_add_stage(conn, actor=SYSTEM, plan_id=pid, kind=kind, name="",
                               starts_on=FIRST + timedelta(days=first),
                               ends_on=FIRST + timedelta(days=last), now=before)
        times = [(d, 20) for d in range(9)] + [(10, h) for h in (10, 14, 19, 20)]
        for n, (d, hour) in enumerate(times):
            broadcasts.do_create_broadcast(
                conn, actor=SYSTEM, name=f"通知{n}", target={"groups": gids},
                text="今晚八点直播，记得来", now=before,
                send_at=datetime.combine(FIRST + timedelta(days=d), clock_time(hour),
                                         tzinfo=TZ))
    return pid


def speed() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        rt = runtime_at(Path(folder))
        pid = seed_000(rt)
        started = time.perf_counter()
        out = plan_rehearsal.do_rehearse_plan(rt.uow, actor=SYSTEM, plan_id=pid, seed=7,
                                              settings=rt.settings,
                                              capabilities=rt.capabilities)
        seconds = time.perf_counter() - started
        rt.close()
    with tempfile.TemporaryDirectory() as folder:
        rt = runtime_at(Path(folder))
        scenario = Scenario(groups=6, members=500, days=DAYS, seed=7,
                            end=datetime.combine(FIRST, clock_time(12), tzinfo=TZ))
        started = time.perf_counter()
        plain = run_simulation(rt.uow, adapter=rt.adapters["sandbox"],
                               config=rt.ingest_config, scenario=scenario, actor=SYSTEM)
        base_seconds = time.perf_counter() - started
        rt.close()
    return {
        "rehearsal": {"seconds": round(seconds, 2), "per_plan_day": round(seconds / DAYS, 2),
                      "events": out["events"], "events_per_s": round(out["events"] / seconds),
                      "joined": out["totals"]["joined"], "deposit": out["totals"]["deposit"],
                      "purchase": out["totals"]["purchase"], "staff": out["staff"],
                      "reactions": out["reactions"], "room": out["room"],
                      "short_days": len(out["short"]),
                      "calibration": {c["name"]: c["value"] for c in out["calibration"]}},
        "baseline_plain_simulator": {"seconds": round(base_seconds, 2),
                                     "events": plain.events,
                                     "events_per_s": round(plain.events / base_seconds)}}


def crowd_calibration(seeds: int) -> dict[str, list[float]]:
    """The model alone over ``seeds`` seeds, on seed 000's outreach."""
    days = tuple((FIRST + timedelta(days=i)).isoformat() for i in range(DAYS))
    outreach = Outreach(days=days, reach=tuple(reach_per_day(DAYS, (0, 8), 5000, 600)),
                        join_rate=0.1, deposit_rate=0.04, purchase_rate=0.5, launch=(10,),
                        room=(90,) * 6)
    found: dict[str, list[float]] = {"gini": [], "daily_active_share": [], "burstiness": []}
    for seed in range(1, seeds + 1):
        crowd = Crowd(outreach, seed=seed)
        talk: Counter[int] = Counter()
        shares, gaps = [], []
        last: dict[int, int] = {}
        for d in range(DAYS):
            spoke: set[int] = set()
            for h in crowd.day(d):
                if h.kind == "leave":
                    crowd.left(h.person)
                elif h.kind == "message" and not crowd.people[h.person].left:
                    talk[h.person] += 1
                    spoke.add(h.person)
                    at = d * 1440 + h.minute
                    if h.group in last:
                        gaps.append((at - last[h.group]) * 60.0)
                    last[h.group] = at
            if sum(crowd.present):
                shares.append(len(spoke) / sum(crowd.present))
        for c in calibrate([talk[i] for i in range(len(crowd.people))], shares, gaps):
            found[c.name].append(c.value)
    return found


def irc_references() -> list[dict[str, Any]]:
    out = []
    for path in sorted(glob.glob(str(IRC / "*.raw.txt"))):
        talk: Counter[str] = Counter()
        joined: set[str] = set()
        times: list[int] = []
        day, last = 0, None
        for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
            m = re.match(r"\[(\d\d):(\d\d)\] <([^>]+)> ", line)
            if m:
                minute = int(m[1]) * 60 + int(m[2])
                if last is not None and minute < last:
                    day += 1  # past midnight
                last = minute
                times.append(day * 1440 + minute)
                talk[m[3]] += 1
            elif j := re.match(r"=== (\S+) \[[^\]]*\]\s+has joined", line):
                joined.add(j[1])
        people = set(talk) | joined
        out.append({"sample": Path(path).name.split(".")[0], "people": len(people),
                    "speakers": len(talk), "hours": round((times[-1] - times[0]) / 60, 1),
                    "gini": round(gini([talk.get(p, 0) for p in people]), 3),
                    "burstiness": round(burstiness(
                        [(b - a) * 60.0 for a, b in pairwise(times)]), 3)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": machine(), "speed": speed()}
    s = result["speed"]
    r, b = s["rehearsal"], s["baseline_plain_simulator"]
    print(f"rehearsal of seed 000's plan ({DAYS} days): {r['seconds']} s "
          f"({r['per_plan_day']} s a plan-day), {r['events']:,} events, "
          f"{r['events_per_s']:,} events/s")
    print(f"baseline, plain simulator, same size: {b['seconds']} s, {b['events']:,} events, "
          f"{b['events_per_s']:,} events/s → the rehearsal runs at "
          f"{r['events_per_s'] / b['events_per_s']:.2f}× the baseline's rate")
    print(f"  joined {r['joined']}, deposits {r['deposit']}, purchases {r['purchase']}; "
          f"tasks {r['staff']['tasks']} (most in a day {r['staff']['most_tasks_in_a_day']}), "
          f"pushes {r['staff']['pushes']}, reactions {r['reactions']}, room {r['room']}")
    found = crowd_calibration(args.seeds)
    result["crowd"] = {k: {"min": min(v), "median": statistics.median(v), "max": max(v)}
                       for k, v in found.items()}
    print(f"crowd over {args.seeds} seeds:")
    for k, v in result["crowd"].items():
        print(f"  {k}: {v['min']} … {v['median']} … {v['max']}")
    irc = irc_references() if IRC.is_dir() else []
    result["irc"] = irc
    if irc:
        for k in ("gini", "burstiness"):
            values = [x[k] for x in irc]
            print(f"#ubuntu IRC, {len(irc)} samples, {k}: {min(values)} … "
                  f"{statistics.median(values)} … {max(values)}")
    else:
        print("#ubuntu IRC samples not found beside the project: skipped")
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str))


if __name__ == "__main__":
    main()
