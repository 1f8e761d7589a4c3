"""Outbox delivery throughput: actions/s from the outbox to the sandbox platform.

For each database (PostgreSQL by default, SQLite with --sqlite) and each worker count
(1 and 2 processes of `qunyun worker`), a fresh database gets N SendText actions spread over
50 groups; the clock runs from starting the workers until every row is marked delivered.
Baseline in the same run: the same N sends written straight to the sandbox store with no
outbox (the floor: what the fake platform itself costs).

    .venv/bin/python bench/outbox_bench.py [-n 20000] [--sqlite] [--json bench/results/outbox.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from qunyun.adapters.platforms.sandbox.send import SandboxStore
from qunyun.adapters.storage import migrate
from qunyun.adapters.storage.db import make_engine
from qunyun.bootstrap import build_runtime
from qunyun.clock import utcnow
from qunyun.config import Settings
from qunyun.domain.actions import SendText
from qunyun.domain.events import ChatRef
from qunyun.services import outbox
from qunyun.services.groups import upsert_group

PG_URL = os.environ.get("QUNYUN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
GROUPS = 50


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def new_database(kind: str, tmp: Path) -> tuple[str, object]:
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}", None
    name = f"qunyun_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False), (admin,
                                                                                        name)


def drop_database(handle: object) -> None:
    if handle is None:
        return
    admin, name = handle  # type: ignore[misc]
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def seed(url: str, n: int, tmp: Path) -> None:
    engine = make_engine(url)
    migrate.upgrade(engine)
    rt = build_runtime(Settings(database_url=url, data_dir=tmp, secret_key="bench"),
                       engine=engine)
    now = utcnow()
    with rt.uow.write() as conn:
        gids = [upsert_group(conn, platform="sandbox",
                             chat=ChatRef(external_id=f"g{i}", name=f"群{i}"), at=now)
                for i in range(GROUPS)]
        actions = [("bench", SendText(group_id=gids[i % GROUPS], text=f"第{i}条通知"))
                   for i in range(n)]
        outbox.enqueue(conn, platform="sandbox", actions=actions,
                       capabilities=rt.capabilities("sandbox"), key_prefix="bench", now=now)
    rt.close()


def delivered(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM outbox WHERE status = 'delivered'")).scalar_one())
    finally:
        engine.dispose()


def run_workers(url: str, n: int, workers: int, tmp: Path) -> float:
    store = tmp / f"sandbox-{uuid.uuid4().hex[:6]}.db"
    env = {**os.environ, "QUNYUN_DATABASE_URL": url, "QUNYUN_DATA_DIR": str(tmp),
           "QUNYUN_SECRET_KEY": "bench", "QUNYUN_SANDBOX_STORE": str(store),
           "QUNYUN_OUTBOX_BATCH_SIZE": "100", "QUNYUN_WORKER_POLL_SECONDS": "0.05",
           "QUNYUN_RATE_PLATFORM_PER_SECOND": "1000000",
           "QUNYUN_RATE_GROUP_PER_MINUTE": "100000000"}
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "qunyun", "worker"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(workers)]
    try:
        while delivered(url) < n:
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                raise RuntimeError("a worker died: " + "".join(
                    p.stderr.read().decode() for p in dead if p.stderr))
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)
    applied, duplicates = SandboxStore(str(store)).counts()
    assert applied == n and duplicates == 0, (applied, duplicates)
    return elapsed


def baseline(n: int, tmp: Path) -> float:
    store = SandboxStore(str(tmp / "baseline.db"))
    start = time.perf_counter()
    for i in range(n):
        store.record(f"base:{i}", "send_text", f"g{i % GROUPS}", {"text": f"第{i}条通知"})
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=20000)
    parser.add_argument("--sqlite", action="store_true", help="also run on SQLite")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, object] = {"n": args.n, "machine": machine(),
                                  "date": time.strftime("%Y-%m-%d")}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        base = baseline(args.n, tmp)
        results["baseline_sends_per_s"] = round(args.n / base)
        print(f"baseline (sandbox store only): {args.n / base:,.0f} sends/s", flush=True)
        kinds = ["postgresql"] + (["sqlite"] if args.sqlite else [])
        for kind in kinds:
            for workers in (1, 2):
                url, handle = new_database(kind, tmp)
                try:
                    seed(url, args.n, tmp)
                    elapsed = run_workers(url, args.n, workers, tmp)
                finally:
                    drop_database(handle)
                rate = args.n / elapsed
                results[f"{kind}_{workers}w_actions_per_s"] = round(rate)
                print(f"{kind:10s} {workers} worker(s): {rate:,.0f} actions/s "
                      f"({elapsed:.1f} s for {args.n:,}; {rate / (args.n / base):.2f}x baseline)",
                      flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
