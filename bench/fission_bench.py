"""Referral crediting through the event path, beside plain joins (the floor), the report's
time, and posters rendered per second.

A campaign over 20 groups with ``--participants`` participants (their codes written
straight into the tables: making codes is the platform's part, not what is measured) and
``--joins`` joins: the floor is the same number of joins with an ordinary channel
(``poster-a``), the credited run joins through participants' codes in a campaign valid at
once, so each join is credited, counted, maybe rewarded and its inviter told. Events go in
batches of 200 through ``do_ingest_event`` with one ``IngestBatch`` per transaction, as the
worker does; plain and credited batches take turns, so both meet tables of the same size.
A credited join is recorded on the event path and settled by the worker in bulk
(``validate_due``): the credited time includes a settlement after every batch, in its own
transaction — more often than the worker's every 5 s, so never flattering.
Then the report is timed, and ``--posters`` posters are rendered.

    .venv/bin/python bench/fission_bench.py [--pg] [--participants 20000] [--joins 60000]
        [--posters 50] [--json bench/results/fission.json]

Targets (issue 28, at 100,000 participants and 300,000 joins): crediting adds ≤ 30 % to a
join; the report ≤ 2 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from outbox_bench import drop_database, machine, new_database
from sqlalchemy import event, select

from qunyun.adapters.storage import migrate
from qunyun.adapters.storage.db import make_engine
from qunyun.adapters.storage.tables import fission_participants, groups, members
from qunyun.bootstrap import build_runtime
from qunyun.clock import utcnow
from qunyun.config import Settings
from qunyun.domain.events import ChatRef, JoinScene, MemberJoined, PersonRef
from qunyun.domain.fission import Stage, participant_code
from qunyun.services import fission, posters
from qunyun.services.ingest import IngestBatch, do_ingest_event
from qunyun.services.users import SYSTEM

GROUPS = 20
BATCH = 200


def joins(prefix: str, n: int, channel_of: list[str] | None,
          start: datetime) -> list[MemberJoined]:
    at0 = start
    out = []
    for i in range(n):
        channel = channel_of[i % len(channel_of)] if channel_of else "poster-a"
        out.append(MemberJoined(
            platform="sandbox", external_event_id=f"{prefix}{i}",
            occurred_at=at0 + timedelta(milliseconds=i),
            chat=ChatRef(external_id=f"g{i % GROUPS}", name=f"福利群{i % GROUPS}"),
            member=PersonRef(external_id=f"{prefix}u{i}", name=f"新朋友\"{i}\"🌸"),
            scene=JoinScene.QR, channel=channel))
    return out


def ingest(rt: object, events: list[MemberJoined]) -> float:
    started = time.perf_counter()
    for i in range(0, len(events), BATCH):
        _batch(rt, events[i:i + BATCH])
    return time.perf_counter() - started


def _batch(rt: object, events: list[MemberJoined]) -> float:
    """One worker transaction of events; its seconds."""
    started = time.perf_counter()
    with rt.uow.write() as conn:  # type: ignore[attr-defined]
        batch = IngestBatch()
        for ev in events:
            do_ingest_event(conn, ev, config=rt.ingest_config,  # type: ignore[attr-defined]
                            received_at=ev.occurred_at, batch=batch)
        batch.flush(conn)
    return time.perf_counter() - started


STATEMENTS = {"n": 0}  # statements sent to the database (an executemany counts once)


def _count(*_args: object) -> None:
    STATEMENTS["n"] += 1


def side_by_side(rt: object, plain: list[MemberJoined], credited: list[MemberJoined]
                 ) -> tuple[float, float, int, int]:
    """Plain and credited batches taken in turns, so both meet the same tables as they grow
    (run one after the other, the second met twice the rows and looked slower)."""
    floor = spent = 0.0
    said = {"plain": 0, "credited": 0}
    for i in range(0, len(plain), BATCH):
        before = STATEMENTS["n"]
        floor += _batch(rt, plain[i:i + BATCH])
        middle = STATEMENTS["n"]
        spent += _batch(rt, credited[i:i + BATCH]) + _settle(rt, credited[i].occurred_at)
        said["plain"] += middle - before
        said["credited"] += STATEMENTS["n"] - middle
    return floor, spent, said["plain"], said["credited"]


def _settle(rt: object, after: datetime) -> float:
    """The worker settling what the batch recorded; its seconds."""
    started = time.perf_counter()
    with rt.uow.write() as conn:  # type: ignore[attr-defined]
        while fission.validate_due(conn, now=after + timedelta(days=1),
                                   capabilities=rt.capabilities  # type: ignore[attr-defined]
                                   ) == fission.SETTLE_BATCH:
            pass
    return time.perf_counter() - started


def run(kind: str, args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    url, handle = new_database(kind, tmp)
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        rt = build_runtime(Settings(database_url=url, data_dir=tmp / kind, secret_key="b"),
                           engine=engine)
        now = utcnow()
        # the groups and the participants' member rows, through the event path
        seeds = joins("s", args.participants, None, now - timedelta(days=1))
        ingest(rt, seeds)
        with rt.uow.write() as conn:
            group_ids = [int(g) for g in conn.execute(select(groups.c.id)).scalars()]
            campaign = fission.do_create_campaign(
                conn, actor=SYSTEM, name="压测裂变", group_ids=group_ids, account="demo",
                stages=[Stage(3, "资料包", args.participants // 2),
                        Stage(10, "训练营名额", 100)], now=now)
            numbers = list(conn.execute(select(members.c.id, members.c.number)
                                        .order_by(members.c.id)))
            conn.execute(fission_participants.insert(), [
                {"campaign_id": campaign["id"], "member_id": int(m), "created_at": now,
                 "code": participant_code(campaign["id"], int(n)), "link": f"https://x/{n}"}
                for m, n in numbers])
        codes = [participant_code(campaign["id"], int(n)) for _m, n in numbers]
        event.listen(engine, "before_cursor_execute", _count)
        floor, credited, plain_n, credited_n = side_by_side(
            rt, joins("p", args.joins, None, now),
            joins("c", args.joins, codes, now + timedelta(hours=1)))
        event.remove(engine, "before_cursor_execute", _count)
        with rt.uow.read() as conn:
            started = time.perf_counter()
            report = fission.report(conn, actor=SYSTEM, campaign_id=campaign["id"],
                                    tz=rt.settings.tz)
            report_s = time.perf_counter() - started
        started = time.perf_counter()
        for i in range(args.posters):
            posters.render(settings={}, title="压测裂变", nickname=f"参与者{i}",
                           link=f"https://qunyun.invalid/fx/{i}")
        poster_s = time.perf_counter() - started
        out = {"plain_joins_per_s": args.joins / floor,
               "credited_joins_per_s": args.joins / credited,
               "overhead_pct": (credited / floor - 1) * 100, "report_s": report_s,
               "posters_per_s": args.posters / poster_s if args.posters else 0.0,
               "valid_invites": float(report["valid_invites"]),
               "participants": float(report["participants"]),
               "statements_per_plain_join": plain_n / args.joins,
               "statements_per_credited_join": credited_n / args.joins}
        print(f"{kind}: plain joins {out['plain_joins_per_s']:,.0f}/s, credited "
              f"{out['credited_joins_per_s']:,.0f}/s (+{out['overhead_pct']:.0f} %), report "
              f"{report_s * 1000:,.0f} ms over {report['valid_invites']:,} valid invites of "
              f"{report['participants']:,} participants, posters "
              f"{out['posters_per_s']:,.1f}/s; statements per join: plain "
              f"{out['statements_per_plain_join']:.1f}, credited (settling included) "
              f"{out['statements_per_credited_join']:.1f}", flush=True)
        return out
    finally:
        engine.dispose()
        drop_database(handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=20_000)
    parser.add_argument("--joins", type=int, default=60_000)
    parser.add_argument("--posters", type=int, default=50)
    parser.add_argument("--pg", action="store_true", help="also on PostgreSQL")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"machine: {machine()}; {args.participants:,} participants, {args.joins:,} joins "
          f"in {GROUPS} groups", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("sqlite", "postgresql") if args.pg else ("sqlite",):
            results[kind] = run(kind, args, Path(tmp))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine(), "args": vars(args) | {
            "json": str(args.json)}, "results": results}, indent=1))


if __name__ == "__main__":
    main()
