"""The delivery worker: fire due schedules, recover dead leases, deliver the outbox."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from qunyun.adapters.storage.sql import single_writer
from qunyun.bootstrap import Runtime
from qunyun.services import outbox, pushes, schedules

log = logging.getLogger(__name__)


@dataclass
class WorkerTick:
    fired: int
    recovered: int
    stats: outbox.DeliveryStats


class Worker:
    def __init__(self, runtime: Runtime, *, worker_id: str | None = None) -> None:
        self.runtime = runtime
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._reminded: datetime | None = None
        self._periodic_at: dict[str, datetime] = {}

    def tick(self) -> WorkerTick:
        rt = self.runtime
        now = rt.now()  # the runtime's clock for every step (a simulated clock in rehearsals)
        fired = schedules.fire_due(rt.uow, config=rt.ingest_config, now=now)
        if self._reminded is None or (now - self._reminded).total_seconds() >= 60:
            with rt.uow.write() as conn:
                pushes.remind_confirmations(conn, now=now)
            self._reminded = now
        for name, every, job in rt.periodic:
            last = self._periodic_at.get(name)
            if last is None or (now - last).total_seconds() >= every:
                self._periodic_at[name] = now
                try:
                    fired += job(rt)
                except Exception:  # one connector's outage must not stop deliveries
                    log.exception("periodic job %s failed", name)
        recovered = outbox.recover_expired(rt.uow, adapters=rt.adapters, now=rt.now())
        stats = outbox.deliver_due(rt.uow, adapters=rt.adapters, limiter=rt.limiter,
                                   worker_id=self.worker_id, policy=rt.policy, now=rt.now)
        return WorkerTick(fired, recovered, stats)

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set; a failing tick is logged and retried after a pause."""
        poll = self.runtime.settings.worker_poll_seconds
        # on SQLite a busy worker rests as long as its tick took, so the web process's writes
        # (callback intake, dashboard edits) get the write lock in between instead of waiting
        # out the busy timeout behind back-to-back batches
        share = single_writer(self.runtime.engine)
        log.info("worker %s started", self.worker_id)
        while not stop.is_set():
            started = time.monotonic()
            try:
                tick = self.tick()
            except Exception:
                log.exception("worker tick failed")
                stop.wait(poll * 5)
                continue
            busy = tick.fired or tick.stats.delivered or tick.stats.retried or tick.stats.dead
            if not busy:
                stop.wait(poll)
            elif share:
                stop.wait(min(poll, time.monotonic() - started))
        log.info("worker %s stopped", self.worker_id)


def start_in_thread(runtime: Runtime) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=Worker(runtime).run, args=(stop,), name="qunyun-worker",
                              daemon=True)
    thread.start()
    return thread, stop
