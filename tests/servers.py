"""Starting `qunyun serve` in tests: a free port and waiting until it answers /healthz."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Poll ``base``/healthz until it answers 200; a server that exits or stays silent past
    ``timeout`` is killed and its stderr raised, so a failed start says why."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(base + "/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError("server did not start: " + err)
        time.sleep(0.2)
