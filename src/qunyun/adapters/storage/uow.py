"""Unit of work: one transaction around one service call, committed or rolled back whole."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, Engine

from qunyun.adapters.storage.db import WRITE_OPTION
from qunyun.clock import reading, wall_clock

AfterCommit = Callable[[], None]


class UnitOfWork:
    """Hands out transactions; ``write()`` takes the SQLite write lock up front.

    ``now`` is where the transaction's time comes from (the runtime's source): services
    stamp rows with ``clock.utcnow()``, which reads it while the transaction is open."""

    def __init__(self, engine: Engine, now: Callable[[], datetime] = wall_clock) -> None:
        self.engine = engine
        self.now = now
        self._write_engine = engine.execution_options(**{WRITE_OPTION: True})

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with reading(self.now), self._write_engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with reading(self.now), self.engine.connect() as conn:
            yield conn
