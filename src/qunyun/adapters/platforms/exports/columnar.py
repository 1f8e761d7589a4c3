"""MemoTrace CSV read by DuckDB: the same rows and message keys as ``read_memotrace``,
computed column-wise, so a large export is parsed and keyed without a Python step per row.

``open_memotrace`` returns None when DuckDB cannot read the file or a row is not valid
(an unreadable time): the caller then uses the row-by-row reader, which names the bad line.
"""

from __future__ import annotations

import csv
import queue
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from qunyun.adapters.platforms.exports.formats import (
    WECHAT_APP_SUBTYPES,
    WECHAT_TYPES,
    ExportError,
    memotrace_group_name,
)


def _type_sql() -> str:
    """The SQL twin of ``formats.wechat_type`` (built from the same tables)."""
    app = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in WECHAT_APP_SUBTYPES.items())
    plain = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in WECHAT_TYPES.items())
    return (f"CASE WHEN t = '49' THEN (CASE st {app} ELSE 'app' END) "
            f"ELSE (CASE t {plain} ELSE 'type_' || t END) END")


WHO = {"talker": "VARCHAR", "sender": "VARCHAR", "name": "VARCHAR", "gid": "BIGINT",
       "mid": "BIGINT"}
_NULL = "\x01null\x01"  # marks NULL in the CSV files handed to DuckDB (no text holds it)
BUILD_MEMORY = "96MB"  # DuckDB's share while it parses and keys the file
READ_MEMORY = "48MB"  # and once the keyed table is built
SPAN = 250_000  # rows per window when reading a segment (its join and sort stay in memory)
FETCH = 10_000  # rows handed over at a time (one executemany each)
Speaker = tuple[str, str, str]  # (talker, sender id, sender name) as the frame keys them


@dataclass
class MemoTraceFrame:
    con: duckdb.DuckDBPyConnection
    path: Path
    rows: int
    last_rn: int  # the last row number (rows may skip blank lines)
    workdir: tempfile.TemporaryDirectory[str]

    def segment(self, after: int, before: int, who: dict[Speaker, tuple[int, int | None]],
                *, for_postgres: bool) -> Iterator[list[tuple[Any, ...]]]:
        """Member messages with after < rn < before, in file order, as the message rows the
        store takes — (group, member, key, sent_at text, "in", type, text, false) — the
        speakers' (group, member) joined in DuckDB, so no Python step runs per message.

        Read in windows of ``SPAN`` rows: each window's join and sort stays within the
        frame's memory limit however long the segment (the table is stored in row order,
        so a window reads only its own blocks)."""
        if not who:  # nobody spoke here (notices only, or the file ends with one)
            return iter(())
        with self._failing_at(after + 1):
            self._load("who", WHO, [(*speaker, gid, mid) for speaker, (gid, mid) in who.items()])
        stamp = ("strftime(make_timestamp(epoch * 1000000), '%Y-%m-%d %H:%M:%S.%f')"
                 + (" || '+00'" if for_postgres else ""))
        query = (f"SELECT w.gid, w.mid, k.key, {stamp}, 'in', k.mtype, k.content, false "
                 "FROM keyed k JOIN who w ON w.talker = k.talker AND w.sender = k.sender "
                 "AND w.name = k.sender_name WHERE k.rn > ? AND k.rn < ? AND NOT k.is_system "
                 "ORDER BY k.rn")
        last = min(before, self.last_rn + 1)

        def chunks() -> Iterator[list[tuple[Any, ...]]]:
            for low in range(after, last - 1, SPAN):
                with self._failing_at(low + 1):
                    cursor = self.con.execute(query, [low, min(low + SPAN + 1, last)])
                    while chunk := cursor.fetchmany(FETCH):
                        yield chunk

        return _read_ahead(chunks())

    def _load(self, table: str, columns: dict[str, str], rows: list[tuple[Any, ...]]) -> None:
        """A temporary table from Python rows, through a CSV file: DuckDB's executemany
        runs one statement per row (2,000 speakers took a second; the file, milliseconds).
        Text is kept exactly (empty is empty, not NULL)."""
        path = Path(self.workdir.name) / f"{table}.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            for row in rows:
                writer.writerow(_NULL if v is None else v for v in row)
        kinds = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
        literal = "'" + str(path).replace("'", "''") + "'"
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM read_csv("
                         f"{literal}, header=false, columns={{{kinds}}}, delim=',', "
                         f"quote='\"', escape='\"', nullstr='{_NULL}', auto_detect=false)")

    @contextmanager
    def _failing_at(self, line: int) -> Iterator[None]:
        """A DuckDB error once the file was read (out of memory or disk for the frame, say)
        becomes an ExportError naming the file, like any other failed import."""
        try:
            yield
        except duckdb.Error as exc:
            raise ExportError(self.path, line, f"reading the export failed: {exc}") from exc

    def speaker_names(self) -> Iterator[tuple[str, str, str, bool]]:
        """Every (talker, name, sender id, is the exporter) that speaks anywhere in the
        file, streamed: what a first look through the file tells the translator."""
        with self._failing_at(0):
            cursor = self.con.execute(
                "SELECT talker, sender_name, sender, bool_or(is_self) FROM keyed "
                "WHERE NOT is_system GROUP BY talker, sender_name, sender")
            while chunk := cursor.fetchmany(FETCH):
                yield from chunk

    def speakers_all(self, low: int = 0, high: int = 2**62) -> list[tuple[Any, ...]]:
        """Every (talker, chat name, sender, name) that speaks in rows low ≤ rn < high:
        first row, first and last epoch, last row, whether it is the exporter — in order
        of first appearance."""
        with self._failing_at(low):
            return self.con.execute(
                "SELECT talker, chat_name, sender, sender_name, min(rn), min(epoch), "
                "max(epoch), max(rn), bool_or(is_self) FROM keyed WHERE NOT is_system "
                "AND rn >= ? AND rn < ? GROUP BY talker, chat_name, sender, sender_name "
                "ORDER BY min(rn)", [low, high]).fetchall()

    def notice_rows(self, low: int = 0, high: int = 2**62) -> list[tuple[Any, ...]]:
        """The system notices of rows low ≤ rn < high in file order: (rn, talker,
        chat_name, epoch, key, content)."""
        with self._failing_at(low):
            return self.con.execute("SELECT rn, talker, chat_name, epoch, key, content "
                                    "FROM keyed WHERE is_system AND rn >= ? AND rn < ? "
                                    "ORDER BY rn", [low, high]).fetchall()

    def spans(self, who: dict[Speaker, tuple[int, int | None]],
              cuts: list[tuple[int, int, int]], low: int = 0,
              high: int = 2**62) -> list[tuple[Any, ...]]:
        """Each member's messages in each group in rows low ≤ rn < high, cut at the rows
        of that member's own join and leave notices (``cuts``: (group, member, row)):
        (group, member, cut row or None, first row, first epoch, last epoch), one per
        stretch. One ASOF join finds each message's last cut, so a notice about one person
        splits only their own talk."""
        with self._failing_at(low):
            self._load("who", WHO, [(*speaker, gid, mid) for speaker, (gid, mid) in who.items()
                                    if mid is not None])
            self._load("cuts", {"gid": "BIGINT", "mid": "BIGINT", "rn": "BIGINT"}, cuts)
            return self.con.execute(
                "WITH said AS (SELECT w.gid, w.mid, k.rn, k.epoch FROM keyed k JOIN who w "
                "ON w.talker = k.talker AND w.sender = k.sender AND w.name = k.sender_name "
                "WHERE NOT k.is_system AND k.rn >= ? AND k.rn < ?) "
                "SELECT s.gid, s.mid, c.rn AS cut, min(s.rn), min(s.epoch), max(s.epoch) "
                "FROM said s ASOF LEFT JOIN cuts c ON s.gid = c.gid AND s.mid = c.mid "
                "AND s.rn >= c.rn GROUP BY s.gid, s.mid, c.rn ORDER BY min(s.rn)",
                [low, high]).fetchall()

    def close(self) -> None:
        self.con.close()
        self.workdir.cleanup()


_DONE = object()


def _read_ahead(source: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Run ``source`` in a thread, ``depth`` items ahead of the consumer: DuckDB reads the
    next chunk while the caller writes this one to the store (SQLite releases the GIL while
    it writes, so the two overlap on a second core). The frame is not used by the caller
    meanwhile. An error in the thread is raised here; a consumer that stops early stops it.
    """
    items: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand(item: Any) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False  # the consumer has gone

    def produce() -> None:
        try:
            for item in source:
                if not hand(item):
                    return
            hand(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            hand(exc)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="duckdb-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := items.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def open_memotrace(path: Path, group_name: str | None) -> MemoTraceFrame | None:
    name = (group_name or memotrace_group_name(path)).replace("'", "''")
    # a file-backed database under a memory limit: a 10M-row export spills to disk
    # instead of growing the process
    workdir = tempfile.TemporaryDirectory(prefix="qunyun-import-")
    con = duckdb.connect(str(Path(workdir.name) / "frame.duckdb"))

    def give_up() -> None:
        con.close()
        workdir.cleanup()

    try:
        con.execute(f"SET memory_limit = '{BUILD_MEMORY}'")
        con.execute("SET threads = 2")
        con.execute("SET enable_progress_bar = false")  # it would write into our output
        con.execute("SET preserve_insertion_order = true")
        literal = "'" + str(path).replace("'", "''") + "'"  # a view takes no parameters
        con.execute(
            f"CREATE VIEW raw AS SELECT row_number() OVER () AS rn, * FROM read_csv({literal}, "
            "all_varchar=true, header=true, null_padding=true, delim=',', quote='\"', "
            "escape='\"', strict_mode=false)")
        columns = {r[0] for r in con.execute("DESCRIBE raw").fetchall()}
        needed = {"TalkerId", "Type", "SubType", "IsSender", "CreateTime", "StrContent",
                  "Remark", "NickName", "Sender"}
        if not needed <= columns:
            give_up()
            return None
        con.execute(f"""
            CREATE TABLE keyed AS
            WITH base AS (
              SELECT rn,
                coalesce(nullif(trim(TalkerId), ''), '{name}') AS talker,
                '{name}' AS chat_name,
                CAST(TRY_CAST(CreateTime AS DOUBLE) AS BIGINT) AS epoch,
                trim(coalesce(Type, '')) AS t, trim(coalesce(SubType, '')) AS st,
                coalesce(StrContent, '') AS content,
                trim(coalesce(Sender, '')) AS sender,
                trim(CASE WHEN coalesce(NickName, '') <> '' THEN NickName
                          WHEN coalesce(Remark, '') <> '' THEN Remark
                          ELSE coalesce(Sender, '') END) AS sender_name,
                trim(coalesce(IsSender, '')) = '1' AS is_self
              FROM raw
              WHERE NOT (TalkerId IS NULL AND CreateTime IS NULL AND StrContent IS NULL)
            ), typed AS (
              SELECT *, {_type_sql()} AS mtype FROM base
            ), hashed AS (
              SELECT *, mtype = 'system' AS is_system,
                substr(sha1(talker || chr(31) || epoch::VARCHAR || '.0' || chr(31) || sender
                            || chr(31) || mtype || chr(31) || content), 1, 24) AS h
              FROM typed
            )
            -- only the columns read later: the table is written to disk, and its width is
            -- most of the time it takes
            SELECT rn, talker, chat_name, epoch, content, sender, sender_name, is_self, mtype,
              is_system, lpad(epoch::VARCHAR, 11, '0') || '.' || h || ':'
                         || row_number() OVER (PARTITION BY h ORDER BY rn)::VARCHAR AS key
            FROM hashed""")
        # a bad time or a NUL (PostgreSQL refuses it): the row path names the line
        bad = con.execute("SELECT count(*) FROM keyed WHERE epoch IS NULL OR contains("
                          "talker || content || sender || sender_name, chr(0))").fetchone()
        if bad is None or bad[0]:
            give_up()
            return None
        total = con.execute("SELECT count(*), coalesce(max(rn), 0) FROM keyed").fetchone()
        assert total is not None
        # built: what is read afterwards — the notices, speakers and spans of a window of
        # the file, the windowed message stream — fits in half, and the buffers given back
        # are ~60 MB of the import's peak (a 2.5M-row recruiting export too, since the
        # history is read a window at a time)
        con.execute(f"SET memory_limit = '{READ_MEMORY}'")
        return MemoTraceFrame(con, path, int(total[0]), int(total[1]), workdir)
    except duckdb.Error:
        give_up()
        return None
