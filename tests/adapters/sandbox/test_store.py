"""The sandbox store is shared by worker processes: it must open and record concurrently."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from qunyun.adapters.platforms.sandbox.send import SandboxStore


def _open_and_record(path: str, worker: int, barrier: mp.synchronize.Barrier) -> None:  # type: ignore[name-defined]
    barrier.wait()
    store = SandboxStore(path)
    for i in range(50):
        store.record(f"k{i}", "send_text", "g", {"worker": worker})
    store.close()


def test_processes_opening_a_new_store_together_all_succeed(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    for round_ in range(3):
        path = str(tmp_path / f"s{round_}.db")
        barrier = ctx.Barrier(4)
        procs = [ctx.Process(target=_open_and_record, args=(path, w, barrier)) for w in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=60)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0]
        applied, duplicates = SandboxStore(path).counts()
        assert (applied, duplicates) == (50, 150)  # each key applied once, repeats counted
