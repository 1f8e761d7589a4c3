"""`qunyun serve --workers 2`: several web processes built from the environment answer the
dashboard and store WeCom callbacks in the same database (a real server, real sockets)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from qunyun.adapters.storage.db import make_engine
from qunyun.adapters.storage.tables import raw_inbox
from tests.adapters.wecom.conftest import AES_KEY, CORP, TOKEN
from tests.servers import free_port, wait_healthy
from tests.web.test_callback_intake import signed

pytestmark = pytest.mark.slow


def test_two_web_processes_serve_pages_and_store_callbacks(english: None, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    env = {**os.environ, "QUNYUN_DATA_DIR": str(tmp_path), "QUNYUN_DATABASE_URL": url}
    cli = [sys.executable, "-m", "qunyun"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([*cli, "wecom", "add-corp", "--corp-id", CORP, "--agent-id", "1",
                    "--secret", "s", "--token", TOKEN, "--aes-key", AES_KEY], env=env,
                   check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([*cli, "serve", "--port", str(port), "--workers", "2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, timeout=60)
        replies = [httpx.post(f"{base}/callbacks/wecom/{CORP}", params=p, content=b)
                   for p, b in signed(20)]
        assert [(r.status_code, r.text) for r in replies] == [(200, "success")] * 20
        assert httpx.get(base + "/login").status_code == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert b"2 processes" in out
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(raw_inbox)).scalar() == 20
    engine.dispose()
