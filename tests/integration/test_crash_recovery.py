"""A worker process killed with SIGKILL mid-delivery loses nothing and repeats nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from qunyun.adapters.platforms.sandbox.send import SandboxStore
from qunyun.adapters.storage.tables import outbox
from qunyun.bootstrap import build_runtime
from qunyun.clock import utcnow
from qunyun.config import Settings
from qunyun.domain.actions import SendText
from qunyun.services import outbox as outbox_service
from qunyun.services.ingest import do_ingest_event
from tests.factories import event, raw_join

N = 1000


def worker_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "QUNYUN_DATABASE_URL": db_url,
        "QUNYUN_DATA_DIR": str(tmp_path / "var"),
        "QUNYUN_SANDBOX_STORE": str(tmp_path / "sandbox.db"),
        "QUNYUN_SANDBOX_LATENCY_SECONDS": "0.002",  # widen the send → mark-delivered window
        "QUNYUN_OUTBOX_LEASE_SECONDS": "2",
        "QUNYUN_OUTBOX_BATCH_SIZE": "20",
        "QUNYUN_RATE_PLATFORM_PER_SECOND": "1000000",
        "QUNYUN_RATE_GROUP_PER_MINUTE": "100000000",
        "QUNYUN_WORKER_POLL_SECONDS": "0.05",
    }


def seed(db_url: str, tmp_path: Path) -> set[str]:
    settings = Settings(database_url=db_url, data_dir=tmp_path / "var",
                        sandbox_store=str(tmp_path / "sandbox.db"))
    rt = build_runtime(settings)
    try:
        with rt.uow.write() as conn:
            gid = do_ingest_event(conn, event(raw_join("seed", "g1", "u1")),
                                  config=rt.ingest_config).group_id
            assert gid is not None
            actions = [("crash", SendText(group_id=gid, text=f"第{i}条")) for i in range(N)]
            outbox_service.enqueue(conn, platform="sandbox", actions=actions,
                                   capabilities=rt.capabilities("sandbox"), key_prefix="crash",
                                   now=utcnow())
        with rt.uow.read() as conn:
            return set(conn.execute(select(outbox.c.idempotency_key)).scalars())
    finally:
        rt.close()


WORKER_LOGS: dict[int, Path] = {}  # pid -> the worker's stderr file
STARTED: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _reap_workers() -> Iterator[None]:
    """A test that fails half-way leaves no worker behind: an orphaned one went on polling
    (and taking CPU from every later test and benchmark) after a failed run."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The worker's stderr goes to a file beside its data: a pipe that nobody reads until the
    end blocks the worker once 64 KB of log lines (a run of failing ticks) fill it, and a
    blocked worker never stops."""
    log_dir = Path(env["QUNYUN_DATA_DIR"]).parent
    with tempfile.NamedTemporaryFile(dir=log_dir, prefix="worker-", suffix=".log",
                                     delete=False) as log:
        proc = subprocess.Popen([sys.executable, "-m", "qunyun", "worker"], env=env,
                                stdout=subprocess.DEVNULL, stderr=log)
    WORKER_LOGS[proc.pid] = Path(log.name)
    STARTED.append(proc)
    return proc


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then the worker must exit cleanly within 20 s; if not, its log says why."""
    proc.send_signal(signal.SIGTERM)
    await_exit(proc)


def await_exit(proc: subprocess.Popen[bytes]) -> None:
    """The worker, already sent SIGTERM once, exits cleanly within 20 s. (Not twice: a second
    signal landing while the interpreter shuts down meets the default handler and kills it.)"""
    try:
        code = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = None
    log = WORKER_LOGS.pop(proc.pid).read_text(errors="replace")
    assert code == 0, f"worker exit {code}; its log ends:\n{log[-4000:]}"


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.slow
def test_sigkill_mid_delivery_then_restart_delivers_each_exactly_once(
        fresh_db_url: str, tmp_path: Path) -> None:
    keys = seed(fresh_db_url, tmp_path)
    assert len(keys) == N
    env = worker_env(fresh_db_url, tmp_path)
    store = SandboxStore(str(tmp_path / "sandbox.db"))
    kills = 0
    for threshold in (150, 450, 750):
        proc = start_worker(env)
        wait_for(lambda t=threshold: store.counts()[0] >= t, 120, f"{threshold} deliveries")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        kills += 1
        assert store.counts()[0] < N, "the worker finished before it could be killed"
    proc = start_worker(env)
    try:
        wait_for(lambda: store.counts()[0] >= N, 180, "all deliveries after restart")
        # let the worker mark the last rows delivered, then stop it politely
        rt = build_runtime(Settings(database_url=fresh_db_url, data_dir=tmp_path / "var",
                                    sandbox_store=str(tmp_path / "s2.db")))
        try:
            def all_marked() -> bool:
                with rt.uow.read() as conn:
                    return outbox_service.outbox_counts(conn)["delivered"] == N
            wait_for(all_marked, 60, "outbox rows marked delivered")
            with rt.uow.read() as conn:
                counts = outbox_service.outbox_counts(conn)
        finally:
            rt.close()
    finally:
        stop_worker(proc)
    applied, duplicates = store.counts()
    sent_keys = {row["idempotency_key"] for row in store.sent(limit=N * 2)}
    assert kills == 3
    assert applied == N and sent_keys == keys  # every action arrived, and only once
    assert counts["delivered"] == N and counts["dead"] == counts["uncertain"] == 0
    print(f"\nSIGKILL x{kills}: {applied} applied once, {duplicates} resends suppressed by key")
    store.close()


@pytest.mark.slow
def test_two_worker_processes_share_the_outbox_without_overlap(fresh_db_url: str,
                                                               tmp_path: Path) -> None:
    """Concurrent claims (SKIP LOCKED on PostgreSQL, the write lock on SQLite) never hand the
    same row to both workers: with no crash there is not even a suppressed duplicate."""
    keys = seed(fresh_db_url, tmp_path)
    env = worker_env(fresh_db_url, tmp_path)
    store = SandboxStore(str(tmp_path / "sandbox.db"))
    procs = [start_worker(env) for _ in range(2)]
    try:
        wait_for(lambda: store.counts()[0] >= N, 180, "all deliveries by two workers")
    finally:
        for proc in procs:  # both at once, so neither keeps delivering alone
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            await_exit(proc)
    applied, duplicates = store.counts()
    assert applied == N and duplicates == 0
    assert {row["idempotency_key"] for row in store.sent(limit=N * 2)} == keys
    store.close()


@pytest.mark.slow
def test_worker_stopped_across_a_playbook_step_sends_it_once_after_restart(
        fresh_db_url: str, tmp_path: Path) -> None:
    """Issue 6: a campaign step falls due while no worker runs; the next worker sends it in
    every group exactly once, and a further restart sends nothing more."""
    from zoneinfo import ZoneInfo

    from qunyun.adapters.storage.tables import scheduled_jobs
    from qunyun.services import automation, playbooks, scripts
    from qunyun.services.users import SYSTEM

    tz = ZoneInfo("Asia/Shanghai")
    settings = Settings(database_url=fresh_db_url, data_dir=tmp_path / "var",
                        sandbox_store=str(tmp_path / "sandbox.db"))
    rt = build_runtime(settings)
    due = utcnow() + timedelta(seconds=4)
    try:
        with rt.uow.write() as conn:
            gids = [do_ingest_event(conn, event(raw_join(f"j{i}", f"g{i}", f"u{i}")),
                                    config=rt.ingest_config).group_id for i in range(6)]
            automation.do_update_settings(conn, actor=SYSTEM, section="broadcast",
                                          values={"quiet_hours": ""})  # whatever the hour
            script = scripts.do_create_script(conn, actor=SYSTEM, values={
                "name": "开始", "body": "{group} 活动现在开始"})
            pb = playbooks.do_create_playbook(conn, actor=SYSTEM, name="发布日",
                                              campaign_start=due,
                                              group_ids=[g for g in gids if g])
            playbooks.do_add_step(conn, actor=SYSTEM, playbook_id=pb["id"], tz=tz,
                                  values={"at": "T+0", "script_id": script["id"]})
    finally:
        rt.close()
    env = worker_env(fresh_db_url, tmp_path)
    store = SandboxStore(str(tmp_path / "sandbox.db"))
    proc = start_worker(env)
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)  # stopped before the step is due
    proc.wait(timeout=10)
    assert utcnow() < due, "the machine was too slow to stop the worker before the step"
    assert store.counts()[0] == 0
    while utcnow() < due + timedelta(seconds=1):
        time.sleep(0.1)
    proc = start_worker(env)
    try:
        wait_for(lambda: store.counts()[0] >= 6, 60, "the step in six groups")
        time.sleep(1.0)  # time for a second (wrong) firing to show up, if there were one
    finally:
        stop_worker(proc)
    proc = start_worker(env)
    time.sleep(3.0)  # past start-up (imports alone take ~1 s on this machine), a full round
    stop_worker(proc)
    applied, duplicates = store.counts()
    texts = sorted(row["payload"]["text"] for row in store.sent(limit=100))
    assert applied == 6 and duplicates == 0
    assert len(set(texts)) == 6 and all(t.endswith("活动现在开始") for t in texts)
    rt = build_runtime(settings)
    try:
        with rt.uow.read() as conn:
            job = conn.execute(select(scheduled_jobs.c.status, scheduled_jobs.c.runs)).one()
    finally:
        rt.close()
    assert (job.status, job.runs) == ("done", 1)
    store.close()


@pytest.mark.slow
def test_workers_killed_at_random_moments_during_broadcasts(fresh_db_url: str,
                                                            tmp_path: Path) -> None:
    """Issue 24's fault trial: four broadcasts to 250 groups each (1,000 sends), fanned out
    and delivered by workers that are SIGKILLed at random moments — while a broadcast job
    fans out, while rows are claimed, between a send and its mark — then one worker finishes.
    Every send arrives exactly once, every broadcast is sent once. Figures: bench/README."""
    import random

    from qunyun.services import automation, broadcasts
    from qunyun.services.users import SYSTEM

    groups, rounds = 250, 4
    settings = Settings(database_url=fresh_db_url, data_dir=tmp_path / "var",
                        sandbox_store=str(tmp_path / "sandbox.db"))
    rt = build_runtime(settings)
    try:
        with rt.uow.write() as conn:
            automation.do_update_settings(conn, actor=SYSTEM, section="broadcast",
                                          values={"quiet_hours": "", "caps": []})
            gids = [do_ingest_event(conn, event(raw_join(f"s{i}", f"g{i}", f"u{i}")),
                                    config=rt.ingest_config).group_id for i in range(groups)]
            for n in range(rounds):
                broadcasts.do_create_broadcast(conn, actor=SYSTEM, name=f"通知{n}",
                                               target={"groups": gids}, text=f"第{n}期通知")
    finally:
        rt.close()
    env = worker_env(fresh_db_url, tmp_path)
    store = SandboxStore(str(tmp_path / "sandbox.db"))
    rng = random.Random(24)
    kills, moments = 0, []
    watch = build_runtime(settings)

    def rows() -> int:
        with watch.uow.read() as conn:
            return sum(outbox_service.outbox_counts(conn).values())

    total = groups * rounds
    for n in range(8):
        proc = start_worker(env)
        if n == 0:  # once the broadcast jobs' fan-out has written rows
            wait_for(lambda: rows() > 0, 120, "fan-out")
            what = f"after fan-out wrote {rows()} rows"
        elif n < 3:  # while starting up and claiming
            time.sleep(rng.uniform(0.2, 1.5))
            what = f"start-up, {store.counts()[0]} sends"
        else:  # at a random point of delivery
            # each later kill leaves room for the ones after it; a worker that ran past
            # the room (it polls faster than we do) is killed at its next send
            low = store.counts()[0] + 1
            target = rng.randint(low, max(low, total - 50 - (7 - n) * 40))
            wait_for(lambda t=target: store.counts()[0] >= t, 120, f"{target} sends")
            what = f"delivery at {store.counts()[0]} sends"
        time.sleep(rng.uniform(0, 0.03))  # a random moment within what it is doing
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        kills += 1
        moments.append(what)
    watch.close()
    assert store.counts()[0] < total, "the workers finished before the last kill"
    before_last = store.counts()[0]
    proc = start_worker(env)
    try:
        wait_for(lambda: store.counts()[0] >= groups * rounds, 240, "every broadcast send")
        rt = build_runtime(settings)
        try:
            def settled() -> bool:
                with rt.uow.read() as conn:
                    return outbox_service.outbox_counts(conn)["delivered"] == groups * rounds
            wait_for(settled, 60, "outbox rows marked delivered")
            with rt.uow.read() as conn:
                counts = outbox_service.outbox_counts(conn)
                states = [b["status"] for b in broadcasts.list_broadcasts(conn, actor=SYSTEM)]
        finally:
            rt.close()
    finally:
        stop_worker(proc)
    applied, suppressed = store.counts()
    texts = [(row["chat"], row["payload"].get("text"))
             for row in store.sent(limit=groups * rounds * 2)]
    # none lost, and none sent twice under another key (a broadcast fanned out twice)
    assert applied == len(texts) == len(set(texts)) == groups * rounds
    assert counts["delivered"] == groups * rounds and counts["dead"] == 0
    assert states == ["sent"] * rounds
    print(f"\nbroadcast fault trial ({fresh_db_url.split(':')[0]}): {kills} SIGKILLs "
          f"({'; '.join(moments)}); {before_last} of {applied} sends done before the last "
          "start; "
          f"{applied} applied once, 0 lost, {suppressed} resends suppressed by key")
    store.close()
