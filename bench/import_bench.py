"""Import throughput: a realistic MemoTrace CSV through `do_import_file` (issue 3).

Generates N messages (default 1M; `--ten-million` for 10M) in one group of 723 people with
a heavy-tailed speaker distribution, 20:00–22:00 peaks and a join notice per member, then
imports it into a fresh database (SQLite by default, `--postgres` for PostgreSQL) and
reports msgs/s and peak RSS. Baseline in the same run: DuckDB `read_csv` of the same file
(the floor: just parsing the CSV into a columnar table).

    .venv/bin/python bench/import_bench.py [-n 1000000] [--postgres] [--keep FILE]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

COLUMNS = ["localId", "TalkerId", "Type", "SubType", "IsSender", "CreateTime", "Status",
           "StrContent", "StrTime", "Remark", "NickName", "Sender"]
TALK = ["请问团购价格多少？", "已报名", "什么时候发货？", "收到👍", "好的", "今晚几点开始？",
        "定金可以退吗", "我家是三居室，推荐哪款？", "已转发朋友圈", "谢谢群主", "哈哈哈"]


def generate(path: Path, n: int, seed: int = 3) -> None:
    rng = random.Random(seed)
    people = [(f"wxid_{i:05d}", f"成员{i}") for i in range(723)]
    weights = [rng.paretovariate(1.05) for _ in people]
    start = 1_700_000_000
    t = start
    room = "88888@chatroom"
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for i, (_wxid, nick) in enumerate(people):
            w.writerow([i, room, 10000, 0, 0, start - 86400 + i, 2,
                        f'"群主"邀请"{nick}"加入了群聊', "", "", "", ""])
        speakers = rng.choices(people, weights=weights, k=n)
        for i, (wxid, nick) in enumerate(speakers):
            t += rng.choice((1, 2, 3, 5, 8, 13, 30))
            w.writerow([i + 1000, room, 1, 0, 0, t, 2, rng.choice(TALK), "", "", nick, wxid])


def duckdb_floor(path: Path) -> float:
    import duckdb

    start = time.perf_counter()
    con = duckdb.connect()
    rows = con.execute(f"SELECT count(*) FROM read_csv('{path}', header=true, "
                       "all_varchar=true)").fetchone()
    con.close()
    assert rows is not None
    return time.perf_counter() - start


IMPORT = """
import json, resource, sys, time
from pathlib import Path
from qunyun.adapters.storage import migrate
from qunyun.adapters.storage.db import make_engine
from qunyun.adapters.storage.tables import utcnow
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.services.imports import do_import_file
engine = make_engine(sys.argv[1]); migrate.upgrade(engine)
start = time.perf_counter()
report = do_import_file(UnitOfWork(engine), Path(sys.argv[2]), now=utcnow())
from datetime import datetime, timedelta, UTC
report_now = datetime.fromtimestamp(1_700_000_000, tz=UTC) + timedelta(days=400)
elapsed = time.perf_counter() - start
from zoneinfo import ZoneInfo
from datetime import date
from qunyun.analytics.health import group_health
with engine.connect() as conn:
    t = time.perf_counter()
    health = group_health(conn, tz=ZoneInfo("Asia/Shanghai"), since=date(2023, 11, 1),
                          until=date(2024, 6, 30), now=report_now)
    health_s = time.perf_counter() - t
print(json.dumps({"elapsed": elapsed, "messages": report.messages, "joins": report.joins,
                  "health_s": health_s, "health_messages": health[0].messages,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--ten-million", action="store_true")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    n = 10_000_000 if args.ten_million else args.n
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        path = args.keep or tmp / "业主群_utf8.csv"
        t0 = time.perf_counter()
        generate(path, n)
        os.sync()  # the file's dirty pages would otherwise be written back during the import
        size = path.stat().st_size / 1e6
        print(f"generated {n:,} messages ({size:,.0f} MB) in {time.perf_counter() - t0:.1f} s",
              flush=True)
        floor = duckdb_floor(path)
        print(f"baseline DuckDB read_csv: {floor:.2f} s = {n / floor:,.0f} rows/s", flush=True)
        if args.postgres:
            sys.path.insert(0, str(Path(__file__).parent))
            from outbox_bench import drop_database, new_database

            url, handle = new_database("postgresql", tmp)
        else:
            url, handle = f"sqlite:///{tmp / f'imp-{uuid.uuid4().hex[:6]}.db'}", None
        try:
            child = subprocess.run([sys.executable, "-c", IMPORT, url, str(path)],
                                   capture_output=True, text=True, env=os.environ)
            if child.returncode:
                sys.exit(f"the import failed (exit {child.returncode}):\n{child.stderr}")
            out = child.stdout
        finally:
            if args.postgres:
                drop_database(handle)
        import json

        result = json.loads(next(line for line in reversed(out.strip().splitlines())
                                 if line.startswith("{")))
        rate = result["messages"] / result["elapsed"]
        kind = "PostgreSQL" if args.postgres else "SQLite"
        print(f"qunyun import ({kind}): {result['elapsed']:.1f} s = {rate:,.0f} msgs/s "
              f"({rate / (n / floor):.3f}x DuckDB), peak RSS {result['peak_rss_mb']:.0f} MB, "
              f"{result['messages']:,} messages, {result['joins']} joins")
        print(f"group health report over all of it: {result['health_s']:.2f} s "
              f"({result['health_messages']:,} messages in the window)")


if __name__ == "__main__":
    main()
