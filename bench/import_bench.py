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


EMOJI = (('<span class="emoji emoji1f338"></span>', "🌸"),
         ('<span class="emoji emoji1f41f"></span>', "🐟"))


def generate_recruiting(path: Path, rows: int, group: int, notices: float = 0.06,
                        seed: int = 3) -> dict[str, int]:
    """A recruiting group's export as real ones look: people arrive in bursts of 1–4 (staff
    invitations and QR posters; join notices ~2/3 of all notices), then talk (those who came
    early talk most); recalls, pats, a rename now and then, advertisers removed; nicknames
    with emoji, 、 and quotes. ``notices`` is the share of rows that are system notices.
    Returns the hand count of what it wrote."""
    rng = random.Random(seed * 1000 + group)
    room = f"{90000 + group}@chatroom"
    start = 1_700_000_000 + group * 3600
    t = start
    members: list[tuple[str, str]] = [(f"wxid_g{group}_owner", "群主")]
    count = {"messages": 0, "joins": 0, "kicks": 0, "recalls": 0, "pats": 0, "renames": 0}
    serial = 0

    def nickname(i: int) -> tuple[str, str]:
        """(as the notice writes it, as the message's NickName column has it)"""
        r = i % 29
        if r == 0:
            markup, char = EMOJI[i % 2]
            return f"{markup}业主{i}", f"{char}业主{i}"
        if r == 1:
            return f"黎{i}、Amy", f"黎{i}、Amy"
        if r == 2:
            return f" 阿{i}", f"阿{i}"  # the notice keeps a leading space inside the quotes
        return f"业主{i}", f"业主{i}"

    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        line = 0

        def notice(text: str) -> None:
            nonlocal line
            line += 1
            w.writerow([line, room, 10000, 0, 0, t, 2, text, "", "", "", ""])

        while line < rows:
            t += rng.choice((1, 2, 3, 5, 8, 13, 30))
            r = rng.random()
            if r < notices * 0.66:  # a burst of newcomers
                k = rng.choice((1, 1, 1, 2, 2, 3, 4))
                new = []
                for _ in range(k):
                    serial += 1
                    new.append(nickname(serial))
                # a QR code admits one person at a time; a nickname with 、 in an invitation
                # list reads as two people unless the group knows it (it is still tested, in
                # tests/integration/test_imports.py), so here such people come by QR code
                if rng.random() < 0.4 or any("、" in shown for shown, _nick in new):
                    for shown, nick in new:
                        notice(f'"{shown}"通过扫描"群主"分享的二维码加入群聊')
                        members.append((f"wxid_g{group}_{serial}_{nick}", nick))
                        count["joins"] += 1
                else:
                    names = "、".join(shown for shown, _nick in new)
                    notice(f'"群主"邀请"{names}"加入了群聊')
                    for _shown, nick in new:
                        members.append((f"wxid_g{group}_{len(members)}", nick))
                        count["joins"] += 1
            elif r < notices * 0.83:
                _wxid, nick = members[int(len(members) * rng.random() ** 2)]
                notice(f'"{nick}" 撤回了一条消息')
                count["recalls"] += 1
            elif r < notices * 0.95:
                a = members[int(len(members) * rng.random() ** 2)][1]
                b = members[int(len(members) * rng.random() ** 2)][1]
                notice(f'"{a}" 拍了拍 "{b}"')
                count["pats"] += 1
            elif r < notices * 0.995 and len(members) > 10:
                victim = members.pop(rng.randrange(1, len(members)))
                notice(f'你将"{victim[1]}"移出了群聊')
                count["kicks"] += 1
            elif r < notices:
                notice(f'"群主"修改群名为“业主群{group}期{line}”')
                count["renames"] += 1
            else:
                wxid, nick = members[int(len(members) * rng.random() ** 3)]
                line += 1
                w.writerow([line, room, 1, 0, int(nick == "群主"), t, 2, rng.choice(TALK), "",
                            "", nick, wxid])
                count["messages"] += 1
    return count


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
from qunyun.clock import utcnow
from qunyun.adapters.storage import migrate
from qunyun.adapters.storage.db import make_engine
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.services.imports import do_import_file
engine = make_engine(sys.argv[1]); migrate.upgrade(engine)
start = time.perf_counter()
totals = {}
for name in sys.argv[2:]:
    report = do_import_file(UnitOfWork(engine), Path(name), now=utcnow())
    for key, value in report.as_dict().items():
        if isinstance(value, int):
            totals[key] = totals.get(key, 0) + value
    totals["pats"] = totals.get("pats", 0) + report.other_notices.get("pat", 0)
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
print(json.dumps({"elapsed": elapsed, **totals,
                  "health_s": health_s, "health_messages": sum(h.messages for h in health),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--ten-million", action="store_true")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--keep", type=Path, help="a folder to keep the generated files in")
    parser.add_argument("--groups", type=int, default=1,
                        help="files (one group each) to split the rows over")
    parser.add_argument("--notices", type=float, default=None,
                        help="share of rows that are system notices (a recruiting group: "
                             "0.06); without it, the notice-poor file of issue 3")
    args = parser.parse_args()
    n = 10_000_000 if args.ten_million else args.n
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        folder = args.keep or tmp
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        paths: list[Path] = []
        expected: dict[str, int] = {}
        if args.notices is None:
            paths.append(folder / "业主群_utf8.csv")
            generate(paths[0], n)
        else:
            for g in range(args.groups):
                paths.append(folder / f"业主群{g + 1}_utf8.csv")
                for key, value in generate_recruiting(paths[-1], n // args.groups, g,
                                                      args.notices).items():
                    expected[key] = expected.get(key, 0) + value
        os.sync()  # the files' dirty pages would otherwise be written back during the import
        size = sum(p.stat().st_size for p in paths) / 1e6
        print(f"generated {n:,} rows in {len(paths)} file(s) ({size:,.0f} MB) in "
              f"{time.perf_counter() - t0:.1f} s" + (f"; {expected}" if expected else ""),
              flush=True)
        floor = sum(duckdb_floor(p) for p in paths)
        print(f"baseline DuckDB read_csv: {floor:.2f} s = {n / floor:,.0f} rows/s", flush=True)
        if args.postgres:
            sys.path.insert(0, str(Path(__file__).parent))
            from outbox_bench import drop_database, new_database

            url, handle = new_database("postgresql", tmp)
        else:
            url, handle = f"sqlite:///{tmp / f'imp-{uuid.uuid4().hex[:6]}.db'}", None
        try:
            child = subprocess.run([sys.executable, "-c", IMPORT, url, *map(str, paths)],
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
        rate = n / result["elapsed"]
        kind = "PostgreSQL" if args.postgres else "SQLite"
        print(f"qunyun import ({kind}): {result['elapsed']:.1f} s = {rate:,.0f} rows/s "
              f"({rate / (n / floor):.3f}x DuckDB), peak RSS {result['peak_rss_mb']:.0f} MB, "
              f"{result['messages']:,} messages, {result['joins']} joins, "
              f"{result['kicks']} removals, {result['recalls']} recalls, {result['pats']} pats, "
              f"{result['renames']} renames")
        for key, want in expected.items():
            got = result.get(key, 0)
            if got != want:
                print(f"MISMATCH {key}: imported {got}, the generator wrote {want}")
        print(f"group health report over all of it: {result['health_s']:.2f} s "
              f"({result['health_messages']:,} messages in the window)")


if __name__ == "__main__":
    main()
