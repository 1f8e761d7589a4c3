"""WeCom callback intake: signed, encrypted callbacks driven at the running server over loopback.

Starts ``qunyun serve`` (SQLite or PostgreSQL, ``--workers`` web processes, delivery worker
on, so processing competes for the same two cores as it would in production) with one
connected corp, and in the same run a bare Starlette endpoint under the same uvicorn and the
same number of processes that reads the body and answers ``success`` (the floor: HTTP +
uvicorn, no crypto, no database). Each callback is a distinct add_member event, encrypted
beforehand. The load comes from ``wrk`` (compiled, Debian package ``wrk``; a Lua script posts
each pre-signed callback once) for ``--duration`` seconds, or with ``--driver python`` from
``--concurrency`` httpx clients posting ``-n`` callbacks (that driver tops out near 400/s on
two cores itself). Reported: accepted callbacks/s, p50/p99 latency, and lost events
(answered 200 but not stored, or refused).

    .venv/bin/python bench/callback_bench.py [--workers 2] [--duration 10] [--pg]
        [--driver wrk|python] [-n 40000] [--concurrency 32] [--json bench/results/callback.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import httpx
from sqlalchemy import Engine, func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from outbox_bench import drop_database, machine, new_database

from qunyun.adapters.platforms.wecom.crypto import WecomCrypto
from qunyun.adapters.platforms.wecom.fake import signed_member_adds
from qunyun.adapters.storage.db import make_engine
from qunyun.adapters.storage.tables import raw_inbox

CORP, TOKEN = "wwbench000000001", "benchToken"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
VENV = Path(sys.executable).parent

BARE = '''
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def receive(request):
    await request.body()
    return PlainTextResponse("success")

app = Starlette(routes=[Route("/callbacks/wecom/{corp_id}", receive, methods=["POST"])])
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def payloads(n: int) -> list[tuple[dict[str, str], str]]:
    return signed_member_adds(WecomCrypto(TOKEN, AES_KEY, CORP), CORP, n)


async def drive(url: str, items: list[tuple[dict[str, str], str]], concurrency: int,
                headers: dict[str, str] | None = None, answer: str = "success"
                ) -> dict[str, float]:
    """``concurrency`` httpx clients post each (query, body) once; a 200 answering
    ``answer`` counts as accepted."""
    latencies: list[float] = []
    ok = 0
    queue: asyncio.Queue[tuple[dict[str, str], str]] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal ok
        while not queue.empty():
            params, body = queue.get_nowait()
            start = time.perf_counter()
            reply = await client.post(url, params=params, content=body.encode(),
                                      headers=headers)
            latencies.append(time.perf_counter() - start)
            ok += reply.status_code == 200 and reply.text == answer

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {"sent": len(items), "ok": ok, "seconds": round(elapsed, 3),
            "per_second": round(len(items) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2)}


LUA = Path(__file__).resolve().parent / "callback_wrk.lua"


def drive_wrk(url: str, items: list[tuple[dict[str, str], str]], connections: int,
              duration: int, tmp: Path, distinct: bool,
              lua_args: tuple[str, ...] = ()) -> dict[str, float]:
    """wrk posts the items for ``duration`` seconds, each once when ``distinct`` (the
    bare endpoint stores nothing, so there a thread may resend its last one); ``lua_args``:
    a content type and one more header for the script."""
    path = "/" + url.split("/", 3)[3]
    pool = tmp / "payloads.tsv"
    pool.write_text("".join(f"{path}?{urlencode(params)}\t{body}\n" if params else
                            f"{path}\t{body}\n" for params, body in items), encoding="utf-8")
    threads = 2
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d",
                          f"{duration}s", "--timeout", "30s", "-s", str(LUA), url, "--",
                          str(pool), str(threads), *lua_args], capture_output=True, text=True,
                         check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    if distinct and r["requests"] >= len(items) // threads * threads:
        raise SystemExit(f"wrk sent {r['requests']} of a pool of {len(items)}: raise -n")
    ok = r["requests"] - r["non_2xx"]
    return {"sent": r["requests"], "ok": ok, "seconds": r["seconds"],
            "per_second": round(ok / r["seconds"], 1), "p50_ms": r["p50_ms"],
            "p99_ms": r["p99_ms"], "socket_errors": r["socket_errors"]}


def drive_any(args: argparse.Namespace, url: str, items: list[tuple[dict[str, str], str]],
              tmp: Path, distinct: bool = True) -> dict[str, float]:
    if args.driver == "wrk":
        return drive_wrk(url, items, args.concurrency, args.duration, tmp, distinct)
    return asyncio.run(drive(url, items, args.concurrency))


def _progress(engine: Engine) -> tuple[int, int]:
    """(callbacks stored, callbacks processed or failed) so far."""
    with engine.connect() as conn:
        rows: dict[str, int] = {str(k): int(n) for k, n in conn.execute(
            select(raw_inbox.c.status, func.count()).group_by(raw_inbox.c.status))}
    return sum(rows.values()), rows.get("processed", 0) + rows.get("failed", 0)


def run_qunyun(db_url: str, data_dir: Path, items: list[tuple[dict[str, str], str]],
               args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    env = {**os.environ, "QUNYUN_DATA_DIR": str(data_dir), "QUNYUN_DATABASE_URL": db_url,
           "QUNYUN_WECOM_API_BASE": "http://127.0.0.1:9/cgi-bin"}
    subprocess.run([str(VENV / "qunyun"), "db", "upgrade"], env=env, check=True,
                   capture_output=True)
    subprocess.run([str(VENV / "qunyun"), "wecom", "add-corp", "--corp-id", CORP,
                    "--agent-id", "1", "--secret", "s", "--token", TOKEN, "--aes-key", AES_KEY],
                   env=env, check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([str(VENV / "qunyun"), "serve", "--port", str(port),
                             "--workers", str(args.workers),
                             *(["--no-worker"] if args.no_worker else [])], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(f"http://127.0.0.1:{port}/login", proc)
        result = drive_any(args, f"http://127.0.0.1:{port}/callbacks/wecom/{CORP}", items, tmp)
        time.sleep(1)  # let answers in flight at the cut-off land
        engine = make_engine(db_url)
        stored, processed = _progress(engine)
        result["stored"], result["processed_by_end"] = stored, processed
        if not args.no_worker:  # how long the worker takes to catch up once the load stops
            start = time.perf_counter()
            while processed < stored and time.perf_counter() - start < 600:
                time.sleep(0.5)
                processed = _progress(engine)[1]
            drain = time.perf_counter() - start
            result["drain_s"] = round(drain, 1)
            result["processed_per_second"] = round(
                processed / (result["seconds"] + 1 + drain), 1)
        engine.dispose()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # every request is a distinct callback: answered 200 but not stored, or refused, is lost
    # (a request cut off by the end of the run may be stored without its answer counted)
    result["lost"] = max(0, result["ok"] - stored) + (result["sent"] - result["ok"])
    return result


@contextmanager
def bare_server(source: str, probe: str, workers: int, tmp: Path) -> Iterator[int]:
    """A bare Starlette app (``source``) under the same uvicorn and process count as
    ``qunyun serve``; yields its port once ``probe`` answers."""
    (tmp / "bare_app.py").write_text(source)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "bare_app:app", "--port",
                             str(port), "--log-level", "warning", "--workers",
                             str(workers)], cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(f"http://127.0.0.1:{port}{probe}", content=b"")
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run_bare(items: list[tuple[dict[str, str], str]], args: argparse.Namespace,
             tmp: Path) -> dict[str, float]:
    with bare_server(BARE, "/callbacks/wecom/x", args.workers, tmp) as port:
        return drive_any(args, f"http://127.0.0.1:{port}/callbacks/wecom/{CORP}", items, tmp,
                         distinct=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=40000,
                        help="callbacks prepared (wrk: the pool, larger than a run sends)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections")
    parser.add_argument("--driver", choices=["wrk", "python"],
                        default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument("--duration", type=int, default=10, help="seconds (wrk)")
    parser.add_argument("--workers", type=int, default=2, help="web processes")
    parser.add_argument("--no-worker", action="store_true",
                        help="intake alone: no callback processing during the run")
    parser.add_argument("--pg", action="store_true", help="also run on PostgreSQL")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    items = payloads(args.n)
    results: dict[str, object] = {"driver": args.driver, "pool": args.n,
                                  "connections": args.concurrency, "workers": args.workers,
                                  "processing_during_run": not args.no_worker,
                                  "duration_s": args.duration if args.driver == "wrk" else None,
                                  "machine": machine()}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        results["bare_endpoint"] = bare = run_bare(items, args, tmp)
        print(f"bare endpoint: {bare['per_second']:,.0f}/s p50 {bare['p50_ms']} ms "
              f"p99 {bare['p99_ms']} ms", flush=True)
        kinds = ["sqlite"] + (["postgresql"] if args.pg else [])
        for kind in kinds:
            url, handle = new_database(kind, tmp)
            try:
                r = run_qunyun(url, tmp / f"var-{kind}", items, args, tmp)
            finally:
                drop_database(handle)
            r["ratio_to_bare"] = round(bare["per_second"] / r["per_second"], 2)
            results[kind] = r
            print(f"qunyun {kind}: {r['per_second']:,.0f}/s p50 {r['p50_ms']} ms "
                  f"p99 {r['p99_ms']} ms, stored {r['stored']}/{r['sent']}, lost {r['lost']}, "
                  f"{r['ratio_to_bare']}x the bare endpoint", flush=True)
            if "drain_s" in r:
                print(f"  processed {r['processed_by_end']:,} by the end of the load, the rest "
                      f"in {r['drain_s']} s more: {r['processed_per_second']:,.0f}/s",
                      flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
