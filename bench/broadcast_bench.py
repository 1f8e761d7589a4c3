"""Broadcast fan-out: one push to 2,000 groups (WeCom's per-task maximum) and one to 100k
segment members, from the fired job to outbox rows, with quiet hours and caps applied.

For each database (SQLite and PostgreSQL) a fresh database gets 2,000 groups and 100k members
with identities, plus push history so the caps bite (5 % of groups already had their 6 pushes
today, 10 % of members their 3 this week). Each broadcast is fired through the scheduler and
the event path (`schedules.fire_due` → ingest → `broadcasts.fire_broadcast` → fan-out), and
timed from the fire to the commit. Baseline in the same run: the same number of ready-made
outbox rows written by the bulk path (COPY on PostgreSQL, C executemany on SQLite) with no
resolving, rendering, caps or logs.

    .venv/bin/python bench/broadcast_bench.py [--members 100000] [--groups 2000]
        [--json bench/results/broadcast.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).parent))
from outbox_bench import drop_database, machine, new_database

from qunyun.adapters.storage import migrate
from qunyun.adapters.storage.db import make_engine
from qunyun.adapters.storage.sql import bulk_insert_ignore
from qunyun.adapters.storage.tables import (
    deliveries,
    groups,
    identities,
    members,
    outbox,
    push_log,
)
from qunyun.bootstrap import build_runtime
from qunyun.clock import utcnow
from qunyun.config import Settings
from qunyun.services import automation, broadcasts, schedules
from qunyun.services.users import SYSTEM


def seed(conn: Any, n_groups: int, n_members: int) -> None:
    now = utcnow()
    conn.execute(insert(groups), [
        {"platform": "sandbox", "external_id": f"g{i}", "name": f"福利群{i}", "settings": {},
         "group_type": "long_term", "series": "", "capacity": 500, "state": "active",
         "rules_text": "", "announcement": "", "created_at": now, "updated_at": now}
        for i in range(n_groups)])
    for lo in range(0, n_members, 20000):
        hi = min(n_members, lo + 20000)
        conn.execute(insert(members), [
            {"number": 10001 + i, "display_name": f"会员{i}", "created_at": now,
             "first_seen_at": now, "last_seen_at": now, "phone": "", "address": ""}
            for i in range(lo, hi)])
    ids = list(conn.execute(select(members.c.id).order_by(members.c.id)).scalars())
    for lo in range(0, len(ids), 20000):
        conn.execute(insert(identities), [
            {"member_id": m, "platform": "sandbox", "kind": "user", "external_id": f"u{m}",
             "display_name": "", "weak": False, "created_at": now} for m in ids[lo:lo + 20000]])
    gids = list(conn.execute(select(groups.c.id).order_by(groups.c.id)).scalars())
    did = conn.execute(insert(deliveries).values(
        key="history", source="broadcast", due_at=now, fired_at=now, detail={})
        .returning(deliveries.c.id)).scalar_one()
    history = [{"platform": "sandbox", "group_id": g, "member_id": None,
                "at": now - timedelta(minutes=k), "delivery_id": did}
               for g in gids[: n_groups // 20] for k in range(6)]
    history += [{"platform": "sandbox", "group_id": None, "member_id": m,
                 "at": now - timedelta(hours=k + 1), "delivery_id": did}
                for m in ids[: n_members // 10] for k in range(3)]
    for lo in range(0, len(history), 20000):
        conn.execute(insert(push_log), history[lo:lo + 20000])


def fire(rt: Any, target: dict[str, Any], text: str) -> tuple[float, dict[str, int]]:
    with rt.uow.write() as conn:
        b = broadcasts.do_create_broadcast(conn, actor=SYSTEM, name="bench", target=target,
                                           text=text)
    t0 = time.perf_counter()
    fired = schedules.fire_due(rt.uow, config=rt.ingest_config)
    elapsed = time.perf_counter() - t0
    assert fired == 1
    with rt.uow.read() as conn:
        row = conn.execute(select(deliveries).where(deliveries.c.broadcast_id == b["id"])
                           ).mappings().one()
    return elapsed, {k: int(row[k]) for k in ("recipients", "planned", "queued", "dropped",
                                               "deferred")}


def baseline(rt: Any, n: int, group: bool) -> float:
    """The same number of ready-made outbox rows written the fastest way we know: COPY on
    PostgreSQL, the driver's C executemany on SQLite (the path the fan-out itself uses)."""
    now = utcnow()
    with rt.uow.read() as conn:
        gid = conn.execute(select(func.min(groups.c.id))).scalar_one()
        mid = conn.execute(select(func.min(members.c.id))).scalar_one()
    columns = ("idempotency_key", "platform", "group_id", "member_id", "action_type",
               "payload", "rule", "status", "attempts", "next_attempt_at", "last_error",
               "created_at")
    payload = json.dumps({"text": "福利群：本周六上午10点开放", "broadcast": True},
                         ensure_ascii=False)
    rows = [(f"base:{i}", "sandbox", gid if group else None, None if group else mid,
             "send_text" if group else "send_private", payload, "baseline", "pending", 0,
             now, "", now) for i in range(n)]
    t0 = time.perf_counter()
    with rt.engine.connect() as conn, conn.begin() as tx:
        bulk_insert_ignore(conn, outbox, columns, rows, ["idempotency_key"])
        elapsed = time.perf_counter() - t0
        tx.rollback()
    return elapsed


def run(kind: str, n_groups: int, n_members: int, tmp: Path) -> dict[str, Any]:
    url, handle = new_database(kind, tmp)
    try:
        engine = make_engine(url)
        migrate.upgrade(engine)
        rt = build_runtime(Settings(database_url=url, data_dir=tmp, secret_key="bench"),
                           engine=engine)
        try:
            with rt.uow.write() as conn:
                seed(conn, n_groups, n_members)
                automation.do_update_settings(conn, actor=SYSTEM, section="broadcast",
                                              values={"quiet_hours": ""})
            g_time, g_counts = fire(rt, {"all": True}, "{group}：本周六上午10点样板间开放")
            m_time, m_counts = fire(rt, {"segment": "number >= 0"},
                                    "{name}你好，本周福利已上线")
            g_base = baseline(rt, g_counts["planned"], True)
            m_base = baseline(rt, m_counts["planned"], False)
        finally:
            rt.close()
    finally:
        drop_database(handle)
    return {"groups": {"seconds": round(g_time, 3), "baseline_seconds": round(g_base, 3),
                       "ratio": round(g_time / g_base, 1), **g_counts},
            "members": {"seconds": round(m_time, 3), "baseline_seconds": round(m_base, 3),
                        "ratio": round(m_time / m_base, 1), **m_counts}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=2000)
    ap.add_argument("--members", type=int, default=100_000)
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results: dict[str, Any] = {"machine": machine(), "groups": args.groups,
                               "members": args.members}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("sqlite", "postgresql"):
            if args.only and kind != args.only:
                continue
            r = run(kind, args.groups, args.members, Path(tmp))
            results[kind] = r
            for what, n in (("groups", args.groups), ("members", args.members)):
                x = r[what]
                print(f"{kind:10} {n:>7} {what:7}: fan-out {x['seconds']:.2f} s "
                      f"({x['planned']} rows, {x['queued']} queued by caps) · baseline "
                      f"bulk write {x['baseline_seconds']:.2f} s · {x['ratio']}×")
    print(f"machine: {results['machine']}")
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
