"""The JSON API under a longer Hypothesis fuzz than ``make test`` runs (tests/web/fuzz.py):
every JSON route of the OpenAPI document, N generated bodies each, as an admin on a fresh
migrated database. Reports requests, 5xx answers (must be 0), refused requests that stored
something (must be 0) and the answers by status.

Baseline in the same run: each route's plain example body, once, on the same database
(the time per request a well-formed body costs).

    .venv/bin/python bench/fuzz_bench.py [--examples 200] [--postgres]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from outbox_bench import drop_database, machine, new_database

from qunyun.adapters.storage import migrate
from qunyun.adapters.storage.db import make_engine
from qunyun.bootstrap import build_runtime
from qunyun.config import Settings
from qunyun.services import users
from qunyun.services.users import SYSTEM
from qunyun.web.app import create_app
from tests.dbhelpers import snapshot
from tests.web.fuzz import fuzz_route, json_targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    tmp = Path(tempfile.mkdtemp(prefix="qunyun-fuzz-"))
    url, handle = new_database("postgresql" if args.postgres else "sqlite", tmp)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    runtime = build_runtime(Settings(database_url=url, data_dir=tmp / "var"))
    try:
        with runtime.uow.write() as conn:
            users.do_create_user(conn, actor=SYSTEM, username="admin1",
                                 password="fuzzing all day 24", role="admin")
            token = users.do_create_api_token(conn, actor=SYSTEM, username="admin1")
        headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
        statuses: Counter[int] = Counter()
        with TestClient(create_app(runtime)) as client:
            spec = client.get("/api/v1/openapi.json", headers=headers).json()
            targets = json_targets(spec)

            def send(method: str, path: str, body: bytes) -> int:
                status = client.request(method, path, content=body,
                                        headers=headers).status_code
                statuses[status] += 1
                return status

            def store() -> dict[str, int]:
                with runtime.uow.read() as conn:
                    return snapshot(conn)

            import json

            started = time.perf_counter()
            for method, path, base, _ in targets:
                send(method, path, json.dumps(base).encode())
            baseline = (time.perf_counter() - started) / len(targets)
            plain = sum(statuses.values())
            statuses.clear()
            started = time.perf_counter()
            ran = sum(fuzz_route(send, store, method, path, base, fields, args.examples)
                      for method, path, base, fields in targets)
            elapsed = time.perf_counter() - started
        print(f"machine: {machine()}")
        print(f"database: {'PostgreSQL' if args.postgres else 'SQLite'}; "
              f"{len(targets)} JSON routes, {args.examples} examples each")
        print(f"baseline: {plain} plain example bodies, {baseline * 1000:.1f} ms a request")
        print(f"fuzz: {ran} requests in {elapsed:.1f} s = {elapsed / ran * 1000:.1f} ms a "
              f"request; 5xx: {sum(n for s, n in statuses.items() if s >= 500)}; "
              f"refused requests that stored something: 0 (checked)")
        print("answers: " + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())))
    finally:
        runtime.close()
        drop_database(handle)


if __name__ == "__main__":
    main()
