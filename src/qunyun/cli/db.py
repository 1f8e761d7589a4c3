"""``qunyun db …`` (migrations, recount), ``qunyun native …`` (the compiled engine) and
``qunyun status`` (figures about the store)."""

from __future__ import annotations

import typer

from qunyun.cli.common import (
    JsonOpt,
    console,
    emit_json,
    fail,
    runtime,
    say,
    settings,
)
from qunyun.native import NativeState

db_app = typer.Typer(help="Database migrations", no_args_is_help=True)
native_app = typer.Typer(help="The compiled rule engine (mypyc)", no_args_is_help=True)


# --- db ---------------------------------------------------------------------------------

@db_app.command("upgrade")
def db_upgrade(as_json: JsonOpt = False) -> None:
    """Create or migrate the database to the newest schema."""
    from qunyun.adapters.storage import migrate as migrations

    with runtime(migrate=True) as rt:
        revision = migrations.current_revision(rt.engine)
        url = rt.engine.url.render_as_string(hide_password=True)
    if as_json:
        emit_json({"database": url, "revision": revision})
    else:
        console.print(say("database {url} at revision {revision}", url=url, revision=revision))


@db_app.command("current")
def db_current(as_json: JsonOpt = False) -> None:
    """Show the database's schema revision and the newest one."""
    from qunyun.adapters.storage import migrate as migrations
    from qunyun.adapters.storage.db import make_engine

    s = settings()
    engine = make_engine(s.resolved_database_url())
    try:
        data = {"revision": migrations.current_revision(engine),
                "head": migrations.head_revision()}
    except Exception as exc:
        fail(say("cannot read the database: {exc}", exc=exc))
    finally:
        engine.dispose()
    if as_json:
        emit_json(data)
    else:
        console.print(say("current {revision} · head {head}", revision=data['revision'],
                          head=data['head']))


@db_app.command("recount")
def db_recount(as_json: JsonOpt = False) -> None:
    """Rebuild the per-member event and message totals that segments read."""
    from qunyun.services.counts import do_recount
    from qunyun.services.users import SYSTEM

    with runtime() as rt, rt.uow.write() as conn:
        rows = do_recount(conn, actor=SYSTEM)
    if as_json:
        emit_json({"rows": rows})
    else:
        console.print(say("{rows} member totals rebuilt", rows=rows))


# --- native ---------------------------------------------------------------------------

def _native_report(result: NativeState, as_json: bool) -> None:
    if as_json:
        emit_json({"build": result.build, "active": result.active, "reason": result.reason})
    else:
        console.print(f"{result.build}: {result.reason}", highlight=False)


@native_app.command("status")
def native_status(as_json: JsonOpt = False) -> None:
    """Whether this process runs the compiled engine, and why (not)."""
    from qunyun import native

    _native_report(native.state, as_json)


@native_app.command("build")
def native_build(as_json: JsonOpt = False) -> None:
    """Compile the engine's hot modules with mypyc (needs the dev tools and a C compiler);
    nothing to do when the build matches the sources."""
    from qunyun import native

    try:
        result = native.build()
    except ImportError as exc:
        fail(say("mypyc is not installed ({exc}): pip install -e '.[dev]'", exc=exc))
    except Exception as exc:  # a compiler error: the plain modules keep working
        fail(say("compiling the engine failed: {name}: {exc}", name=type(exc).__name__, exc=exc))
    _native_report(result, as_json)
    if not result.active:
        raise typer.Exit(1)


def status(as_json: JsonOpt = False) -> None:
    """Figures about the store: outbox, inbound events, tasks, members."""
    from qunyun.services import ingest_stats

    with runtime() as rt, rt.uow.read() as conn:
        figures = ingest_stats.store_figures(conn).__dict__
    if as_json:
        emit_json(figures)
    else:
        console.print(figures)
