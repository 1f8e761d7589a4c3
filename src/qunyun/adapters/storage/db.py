"""Engine construction: SQLite gets WAL, foreign keys, a busy timeout and explicit BEGINs.

pysqlite's own transaction handling defers BEGIN in ways that break SAVEPOINTs and lets two
writers both read before either writes; we take over BEGIN (SQLAlchemy's documented recipe)
and let write sessions ask for ``BEGIN IMMEDIATE`` so they queue on the lock instead of failing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from qunyun.adapters.storage.sqlite_setup import prepare_connection

WRITE_OPTION = "qunyun_write"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use psycopg 3 for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    url = normalise_url(url)
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            _private_file(Path(database))
        engine = create_engine(
            url,
            echo=echo,
            hide_parameters=True,  # error logs must not carry members' words and numbers
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=NullPool if database in (None, "", ":memory:") else None,
        )
        _tune_sqlite(engine)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=10,
                         hide_parameters=True)


def _private_file(database: Path) -> None:
    """Create a new SQLite database readable by its owner only (SQLite gives its -wal and
    -shm files the same mode), in a folder only the owner can list."""
    if not database.parent.exists():
        database.parent.mkdir(parents=True, mode=0o700)
        database.parent.chmod(0o700)
    if not database.exists():
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        prepare_connection(dbapi_conn)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")
