"""Unit of work: one transaction around one service call, committed or rolled back whole."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from qunyun.adapters.storage.db import WRITE_OPTION

AfterCommit = Callable[[], None]


class UnitOfWork:
    """Hands out transactions; ``write()`` takes the SQLite write lock up front."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write_engine = engine.execution_options(**{WRITE_OPTION: True})

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self._write_engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn
