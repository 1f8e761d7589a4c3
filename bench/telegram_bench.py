"""Telegram webhook intake and processing: distinct updates posted at the running server over
loopback with the secret header, beside a bare endpoint.

Starts a fake Bot API (in this process) and ``qunyun serve`` (SQLite or PostgreSQL,
``--workers`` web processes, the delivery worker on) with one bot connected to the fake by
webhook and check-ins switched on, and in the same run a bare Starlette endpoint under the
same uvicorn and process count that reads the body and answers ``ok`` (the floor). Each
update is a distinct group message, half of them check-ins (``打卡``) the worker answers
through the bot — so "processed" is end to end: update → rules → outbox → a call at the
fake. Load: ``wrk`` (Debian package) for ``--duration`` seconds, or ``--driver python``.
Reported: accepted/s, p50/p99, lost (answered 200 but not stored, or refused), updates
processed per second until the backlog is done, and replies that reached the fake.

    .venv/bin/python bench/telegram_bench.py [--workers 2] [--duration 10] [--pg]
        [--driver wrk|python] [-n 60000] [--json bench/results/telegram.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from callback_bench import bare_server, drive, drive_wrk, free_port, wait_up
from outbox_bench import drop_database, machine, new_database

from qunyun.adapters.platforms.telegram.fake import FakeTelegram
from qunyun.adapters.storage.db import make_engine
from qunyun.adapters.storage.tables import raw_inbox

SECRET = "bench-secret-0123456789"
VENV = Path(sys.executable).parent
CHATS = 50
BARE = '''
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def receive(request):
    await request.body()
    return PlainTextResponse("ok")

app = Starlette(routes=[Route("/callbacks/telegram/{bot}", receive, methods=["POST"])])
'''


def updates(n: int, start: int) -> list[str]:
    """``n`` distinct group messages: users talk in 50 supergroups, every other one a
    check-in, names with quotes and emoji as chats have them."""
    out = []
    for i in range(n):
        chat = -1001000000000 - i % CHATS
        uid = 100000 + i % 5000
        out.append(json.dumps({"update_id": i + 1, "message": {
            "message_id": i + 1, "date": start + i // 1000,
            "chat": {"id": chat, "type": "supergroup", "title": f'家长群"{i % CHATS}"'},
            "from": {"id": uid, "is_bot": False, "first_name": f"学员{uid}🌸"},
            "text": "打卡" if i % 2 else f"今天的作业第 {i} 题怎么做？"}}, ensure_ascii=False))
    return out


HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}


def drive_any(args: argparse.Namespace, url: str, bodies: list[str], tmp: Path,
              distinct: bool = True) -> dict[str, float]:
    """The WeCom bench's drivers with Telegram's headers (the body is the whole update)."""
    items: list[tuple[dict[str, str], str]] = [({}, b) for b in bodies]
    if args.driver == "wrk":
        return drive_wrk(url, items, args.concurrency, args.duration, tmp, distinct,
                         ("application/json", "X-Telegram-Bot-Api-Secret-Token", SECRET))
    return asyncio.run(drive(url, items, args.concurrency, headers=HEADERS, answer="ok"))


def _progress(engine: object) -> tuple[int, int]:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        rows = {str(k): int(n) for k, n in conn.execute(
            select(raw_inbox.c.status, func.count()).group_by(raw_inbox.c.status))}
    return sum(rows.values()), rows.get("processed", 0) + rows.get("failed", 0)


def run_qunyun(db_url: str, data_dir: Path, bodies: list[str], args: argparse.Namespace,
               tmp: Path, fake: FakeTelegram, token: str) -> dict[str, float]:
    env = {**os.environ, "QUNYUN_DATA_DIR": str(data_dir), "QUNYUN_DATABASE_URL": db_url,
           "QUNYUN_TELEGRAM_API_BASE": fake.base_url,
           # the bench measures the pipeline, not Telegram's own limits
           "QUNYUN_RATE_PLATFORM_PER_SECOND": "100000", "QUNYUN_RATE_GROUP_PER_MINUTE": "100000"}
    qunyun = str(VENV / "qunyun")
    subprocess.run([qunyun, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([qunyun, "telegram", "add-bot", "--token", "-", "--secret", SECRET,
                    "--webhook-url", "https://bench.example"], input=token + "\n", text=True,
                   env=env, check=True, capture_output=True)
    subprocess.run([qunyun, "automation", "set", "checkin", "enabled=true"], env=env,
                   check=True, capture_output=True)
    bot_id = token.split(":")[0]
    for i in range(CHATS):  # the bot is an admin in every group (its rights are known)
        fake.add_chat(-1001000000000 - i, f'家长群"{i}"')
        fake.bot_added(token, -1001000000000 - i)
    sent_before = len(fake.called("sendMessage"))
    port = free_port()
    # the web server's own worker thread, or --worker-processes separate `qunyun worker`s
    own_worker = not args.no_worker and args.worker_processes == 0
    proc = subprocess.Popen([qunyun, "serve", "--port", str(port), "--workers",
                             str(args.workers), *([] if own_worker else ["--no-worker"])],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = [subprocess.Popen([qunyun, "worker"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
               for _ in range(0 if args.no_worker else args.worker_processes)]
    url = f"http://127.0.0.1:{port}/callbacks/telegram/{bot_id}"
    try:
        wait_up(f"http://127.0.0.1:{port}/login", proc)
        # the bot-added updates first, as Telegram would have sent them, so chats are known
        for update in fake.bots[token].updates:
            httpx.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        result = drive_any(args, url, bodies, tmp)
        time.sleep(1)
        engine = make_engine(db_url)
        stored, processed = _progress(engine)
        stored -= CHATS
        result["stored"], result["processed_by_end"] = stored, processed
        if args.no_worker:
            engine.dispose()
            result["lost"] = max(0, result["ok"] - stored) + (result["sent"] - result["ok"])
            return result
        began, at_load_end = time.perf_counter(), processed
        while processed < stored + CHATS and time.perf_counter() - began < 900:
            time.sleep(0.5)
            processed = _progress(engine)[1]
        drain = time.perf_counter() - began
        result["drain_s"] = round(drain, 1)
        # the processing alone, once the load stopped (the web processes idle)
        result["processed_per_second_after_load"] = round(
            (processed - at_load_end) / drain, 1) if drain else 0.0
        result["processed_per_second"] = round((processed - CHATS) /
                                               (result["seconds"] + 1 + drain), 1)
        time.sleep(3)  # replies still in the outbox
        result["replies_at_fake"] = len(fake.called("sendMessage")) - sent_before
        engine.dispose()
    finally:
        for p in [proc, *workers]:
            p.terminate()
            p.wait(timeout=30)
    result["lost"] = max(0, result["ok"] - stored) + (result["sent"] - result["ok"])
    return result


def run_bare(bodies: list[str], args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    with bare_server(BARE, "/callbacks/telegram/1", args.workers, tmp) as port:
        return drive_any(args, f"http://127.0.0.1:{port}/callbacks/telegram/1", bodies, tmp,
                         distinct=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=60000, help="updates prepared (the pool)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections")
    parser.add_argument("--driver", choices=["wrk", "python"],
                        default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument("--duration", type=int, default=10, help="seconds (wrk)")
    parser.add_argument("--workers", type=int, default=2, help="web processes")
    parser.add_argument("--pg", action="store_true", help="also run on PostgreSQL")
    parser.add_argument("--pg-only", action="store_true", help="only PostgreSQL")
    parser.add_argument("--no-worker", action="store_true",
                        help="intake alone: nothing processed during the run")
    parser.add_argument("--worker-processes", type=int, default=0,
                        help="separate `qunyun worker` processes instead of the server's own")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    bodies = updates(args.n, int(time.time()) - args.n // 1000 - 60)  # all in the past
    results: dict[str, object] = {"driver": args.driver, "pool": args.n,
                                  "processing_during_run": not args.no_worker,
                                  "connections": args.concurrency, "workers": args.workers,
                                  "worker_processes": args.worker_processes,
                                  "duration_s": args.duration if args.driver == "wrk" else None,
                                  "machine": machine()}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        results["bare_endpoint"] = bare = run_bare(bodies, args, tmp)
        print(f"bare endpoint: {bare['per_second']:,.0f}/s p50 {bare['p50_ms']} ms "
              f"p99 {bare['p99_ms']} ms", flush=True)
        kinds = (["sqlite"] if not args.pg_only else []) + (
            ["postgresql"] if args.pg or args.pg_only else [])
        for kind in kinds:
            fake = FakeTelegram().serve()
            token = fake.add_bot()
            url, handle = new_database(kind, tmp)
            try:
                r = run_qunyun(url, tmp / f"var-{kind}", bodies, args, tmp, fake, token)
            finally:
                drop_database(handle)
                fake.stop()
            r["ratio_to_bare"] = round(bare["per_second"] / r["per_second"], 2)
            results[kind] = r
            print(f"qunyun {kind}: {r['per_second']:,.0f}/s accepted, p50 {r['p50_ms']} ms "
                  f"p99 {r['p99_ms']} ms, stored {r['stored']}/{r['sent']}, lost {r['lost']}",
                  flush=True)
            if not args.no_worker:
                print(f"  processed {r['processed_per_second']:,.0f}/s end to end (backlog "
                      f"done {r['drain_s']} s after the load; "
                      f"{r['processed_per_second_after_load']:,.0f}/s once the load stopped), "
                      f"{r['replies_at_fake']} check-in replies reached the fake", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
