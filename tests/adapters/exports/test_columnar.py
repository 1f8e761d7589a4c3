"""The DuckDB frame's reading machinery: read-ahead thread and errors after the file was read."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from qunyun.adapters.platforms.exports import formats
from qunyun.adapters.platforms.exports.columnar import _read_ahead, open_memotrace
from qunyun.adapters.platforms.exports.formats import ExportError

FIXTURES = Path(formats.__file__).parent / "fixtures"


def test_read_ahead_keeps_order_and_raises_the_sources_error_in_the_consumer() -> None:
    assert list(_read_ahead(iter(range(100)), depth=2)) == list(range(100))

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("disk full")

    got = []
    with pytest.raises(ValueError, match="disk full"):
        for item in _read_ahead(failing()):
            got.append(item)
    assert got == [1]


def test_a_consumer_that_stops_early_ends_the_thread_and_closes_the_source() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                n += 1
                yield n
        finally:
            closed.set()

    reader = _read_ahead(endless(), depth=1)
    assert [next(reader), next(reader)] == [1, 2]
    reader.close()  # as a for loop does when its body raises
    assert closed.wait(5)
    assert not any(t.name == "duckdb-read-ahead" for t in threading.enumerate())


def test_a_duckdb_failure_after_opening_names_the_file() -> None:
    frame = open_memotrace(FIXTURES / "memotrace__group.csv", None)
    assert frame is not None
    try:
        who = {(s[0], s[2], s[3]): (1, 1) for s in frame.speakers_all()}
        assert sum(len(c) for c in frame.segment(0, 2**62, who, for_postgres=False)) == 7
        frame.con.close()  # stands for the frame running out of memory or disk
        with pytest.raises(ExportError, match=r"memotrace__group\.csv:1: reading the export"):
            list(frame.segment(0, 2**62, who, for_postgres=False))
        with pytest.raises(ExportError, match="reading the export failed"):
            frame.speakers_all()
    finally:
        frame.workdir.cleanup()
