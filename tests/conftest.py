"""Shared fixtures: the same tests run on real SQLite and real PostgreSQL.

``db_kind`` is parametrised over both. PostgreSQL tests skip when the server is unreachable,
unless ``QUNYUN_REQUIRE_SERVICES=1`` (CI), where an unreachable server fails the run.
Each test runs inside a transaction that is rolled back; tests that need real commits
(several processes, a killed worker) ask for ``fresh_db_url`` instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url

from qunyun.adapters.platforms.sandbox import SandboxAdapter
from qunyun.adapters.platforms.sandbox.send import SandboxStore
from qunyun.adapters.platforms.wecom.fake import FakeWecom
from qunyun.adapters.ratelimit import LocalRateLimiter
from qunyun.adapters.storage import migrate
from qunyun.adapters.storage.db import make_engine
from qunyun.adapters.storage.uow import UnitOfWork
from qunyun.bootstrap import Runtime, build_runtime
from qunyun.clock import reading
from qunyun.config import Settings

PG_URL = os.environ.get("QUNYUN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("QUNYUN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE = os.environ.get("QUNYUN_REQUIRE_SERVICES") == "1"


def _service_missing(what: str, error: Exception) -> None:
    message = f"{what} unreachable: {error}"
    if REQUIRE:
        pytest.fail(message + " (QUNYUN_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


_pg_state: dict[str, object] = {}


def _pg_admin() -> Engine:
    engine = _pg_state.get("admin")
    if engine is None:
        engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        _pg_state["admin"] = engine
    assert isinstance(engine, Engine)
    return engine


def create_pg_database() -> str:
    """A new empty PostgreSQL database; returns its URL (dropped at session end)."""
    name = f"qunyun_t_{uuid.uuid4().hex[:12]}"
    try:
        with _pg_admin().connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # unreachable server, bad credentials
        _service_missing("PostgreSQL", exc)
    created = _pg_state.setdefault("created", [])
    assert isinstance(created, list)
    created.append(name)
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    admin = _pg_state.get("admin")
    if isinstance(admin, Engine):
        with admin.connect() as conn:
            for name in _pg_state.get("created", []):  # type: ignore[union-attr]
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def new_database_url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / f'qy-{uuid.uuid4().hex[:8]}.db'}"
    return create_pg_database()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def migrated_engine(db_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = new_database_url(db_kind, tmp_path_factory.mktemp(db_kind))
    engine = make_engine(url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


class BoundUnitOfWork(UnitOfWork):
    """Every transaction is a savepoint on one outer connection that the test rolls back."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn.engine)
        self.conn = conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with reading(self.now), self.conn.begin_nested():
            yield self.conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with reading(self.now):
            yield self.conn


@pytest.fixture
def conn(migrated_engine: Engine) -> Iterator[Connection]:
    with migrated_engine.connect() as connection:
        outer = connection.begin()
        try:
            yield connection
        finally:
            outer.rollback()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxAdapter]:
    adapter = SandboxAdapter(SandboxStore(str(tmp_path / "sandbox.db")))
    yield adapter
    adapter.close()


@pytest.fixture
def runtime(conn: Connection, sandbox: SandboxAdapter, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime whose every transaction lands in the test's rolled-back connection."""
    settings = Settings(data_dir=tmp_path, secret_key="test-secret")
    rt = build_runtime(settings, engine=conn.engine, adapters={"sandbox": sandbox},
                       limiter=LocalRateLimiter())
    rt.use_uow(BoundUnitOfWork(conn))
    yield rt


@pytest.fixture
def fresh_db_url(db_kind: str, tmp_path: Path) -> str:
    """A new, migrated database whose commits are real (for multi-process tests)."""
    url = new_database_url(db_kind, tmp_path)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except Exception as exc:
        _service_missing("Redis", exc)
    return REDIS_URL


@pytest.fixture
def fake() -> Iterator[FakeWecom]:
    """A fake WeCom server over real HTTP with one corp (one per test: its state is small)."""
    from tests.adapters.wecom.conftest import AES_KEY, CORP, SECRET, TOKEN

    server = FakeWecom()
    server.add_corp(CORP, SECRET, TOKEN, AES_KEY)
    server.serve()
    yield server
    server.stop()
