"""``qunyun worker``, ``qunyun serve`` and ``qunyun demo``."""

from __future__ import annotations

import os
import secrets
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from qunyun.bootstrap import Runtime
from qunyun.cli.common import (
    JsonOpt,
    console,
    emit_json,
    runtime,
    say,
    state,
)

# --- worker, serve, demo ----------------------------------------------------------------

def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def worker(once: Annotated[bool, typer.Option(help="Run one round and exit")] = False,
           as_json: JsonOpt = False) -> None:
    """Deliver the outbox and fire scheduled jobs until stopped (SIGTERM/Ctrl-C)."""
    stop = threading.Event()
    if not once:  # first, so a stop asked for during start-up is a clean stop
        _stop_on_signals(stop)
    from qunyun.worker import Worker

    with runtime() as rt:
        w = Worker(rt)
        if once:
            tick = w.tick()
            data = {"fired": tick.fired, "recovered": tick.recovered, **tick.stats.__dict__}
            if as_json:
                emit_json(data)
            else:
                console.print(data)
            return
        w.run(stop)


def _serve(rt: Runtime, host: str, port: int, with_worker: bool, workers: int = 1) -> None:
    import uvicorn

    from qunyun.web.app import create_app

    if workers == 1:
        uvicorn.run(create_app(rt, start_worker=with_worker), host=host, port=port,
                    log_level="warning")
        return
    # several processes: each builds its app from the environment; delivery runs once, here
    stop: threading.Event | None = None
    if with_worker:
        from qunyun.worker import start_in_thread

        _, stop = start_in_thread(rt)
    try:
        uvicorn.run("qunyun.web.app:app_from_env", factory=True, host=host, port=port,
                    workers=workers, log_level="warning")
    finally:
        if stop is not None:
            stop.set()


def serve(host: str = "127.0.0.1", port: int = 8000,
          no_worker: Annotated[bool, typer.Option("--no-worker",
                                                  help="Do not deliver in-process")] = False,
          workers: Annotated[int, typer.Option(
              min=1, max=64, help="Web processes (the delivery worker still runs once)")] = 1,
          ) -> None:
    """Serve the dashboard and API (with the delivery worker in-process unless --no-worker)."""
    with runtime() as rt:
        database = rt.engine.url.render_as_string(hide_password=True)
        where = {"host": host, "port": port, "database": database, "workers": workers}
        console.print(say("qunyun on http://{host}:{port}  (database {database}, {workers} "
                          "processes)", **where) if workers > 1 else
                      say("qunyun on http://{host}:{port}  (database {database})", **where))
        if workers > 1 and state.db:  # the web processes read the URL from the environment
            os.environ["QUNYUN_DATABASE_URL"] = state.db
        _serve(rt, host, port, not no_worker, workers)


def demo(
    host: str = "127.0.0.1",
    port: int = 8000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Load demo data and exit")] = False,
    seed: int = 7,
    as_json: JsonOpt = False,
) -> None:
    """Migrate, load the demo (6 groups of a home-furnishing launch), create the demo
    admin and serve the dashboard."""
    from qunyun import demo as demo_data

    with runtime(migrate=True) as rt:
        loaded = demo_data.load_demo(rt, seed=seed)
        password_file = Path(rt.settings.data_dir) / "demo_admin_password"
        login = demo_data.ensure_demo_admin(rt, password_file, secrets.token_urlsafe(9))
        info = {"url": f"http://{host}:{port}", "username": login[0], "password": login[1],
                **loaded}
        if as_json:
            emit_json(info)
        else:
            console.rule("群运 qunyun demo")
            console.print(say("打开 / open  [bold]{url}[/bold]", url=info['url']))
            console.print(say("用户名 / username  [bold]{login}[/bold]   密码 / password  "
                              "[bold]{login2}[/bold]", login=login[0],
                              login2=login[1]))
            console.print(say("demo data: {loaded}", loaded=loaded))
        if not no_serve:
            _serve(rt, host, port, True)
