"""Chat-export import on real databases: counts, membership events, idempotency, failures."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, inspect, select

from qunyun.adapters.platforms.exports import columnar, formats
from qunyun.adapters.storage import sql
from qunyun.adapters.storage.tables import (
    groups,
    identities,
    members,
    memberships,
    messages,
)
from qunyun.bootstrap import Runtime
from qunyun.clock import utcnow
from qunyun.services import import_history
from qunyun.services.imports import MEMBER_INDEX, ImportFailed, do_import_file
from tests.dbhelpers import snapshot

FIXTURES = Path(formats.__file__).parent / "fixtures"


def imp(runtime: Runtime, name: str, **kw):  # type: ignore[no-untyped-def]
    return do_import_file(runtime.uow, FIXTURES / name, now=utcnow(), **kw)


def member_by_name(conn: Connection, name: str) -> int:
    return int(conn.execute(select(members.c.id).where(members.c.display_name == name)
                            ).scalar_one())


def test_memotrace_group_export(conn: Connection, runtime: Runtime) -> None:
    report = imp(runtime, "memotrace__group.csv")
    assert report.format == "memotrace"
    assert (report.messages, report.joins, report.kicks, report.renames, report.recalls) == (
        7, 5, 1, 1, 1)
    assert report.other_notices == {"pat": 1} and report.unparsed_notices == 1
    assert report.new_members == snapshot(conn)["members"]  # notices' people included
    assert report.skipped == 0 and report.groups == 1
    group = conn.execute(select(groups.c.name, groups.c.external_id)).one()
    assert group.name == "业主福利群（二期）" and group.external_id == "12345@chatroom"
    # 李四 was named by an invite before speaking: one member with both identities
    lisi = member_by_name(conn, "李四")
    kinds = conn.execute(select(identities.c.kind).where(identities.c.member_id == lisi)
                         .order_by(identities.c.kind)).scalars().all()
    assert kinds == ["nickname", "wxid"]
    # 王五 was removed by the exporting account
    wangwu = member_by_name(conn, "王五")
    left = conn.execute(select(memberships.c.leave_scene).where(
        memberships.c.member_id == wangwu)).scalar_one()
    assert left == "removed"
    # the XML notice gave 钱七's wxid; the QR join recorded 张三 as the sharer
    assert conn.execute(select(identities.c.external_id).where(
        identities.c.kind == "wxid", identities.c.external_id == "wxid_qq7")).scalar_one()
    zhao = member_by_name(conn, "赵六 🌸")
    row = conn.execute(select(memberships.c.join_scene, memberships.c.inviter_member_id)
                       .where(memberships.c.member_id == zhao)).one()
    assert row.join_scene == "qr" and row.inviter_member_id == member_by_name(conn, "张三")
    # notices are not messages; image rows are
    types = dict(conn.execute(select(messages.c.message_type, func.count())
                              .group_by(messages.c.message_type)).all())
    assert types == {"text": 6, "image": 1}
    # the ragged last row (no sender columns) is kept, attributed to nobody
    assert conn.execute(select(messages.c.member_id).where(messages.c.text == "短行也能读")
                        ).scalar_one() is None


def test_reimport_and_overlap_add_nothing(conn: Connection, runtime: Runtime,
                                          tmp_path: Path) -> None:
    imp(runtime, "memotrace__group.csv")
    before = snapshot(conn)
    again = imp(runtime, "memotrace__group.csv")
    assert again.messages == 0 and again.duplicate_messages == 7 and again.joins == 0
    assert snapshot(conn) == before
    # an overlapping export of the same group under another file name
    copy = tmp_path / "业主福利群_utf8.csv"
    shutil.copy(FIXTURES / "memotrace__group.csv", copy)
    do_import_file(runtime.uow, copy, now=utcnow())
    assert snapshot(conn) == before


def test_bad_row_fails_the_whole_file_or_is_skipped(conn: Connection, runtime: Runtime) -> None:
    before = snapshot(conn)
    with pytest.raises(ImportFailed) as failed:  # DuckDB sees the bad row: rows path names it
        imp(runtime, "memotrace__bad_time.csv")
    assert failed.value.error["line"] == 3 and "CreateTime" in failed.value.error["reason"]
    assert str(FIXTURES / "memotrace__bad_time.csv") in str(failed.value)
    assert snapshot(conn) == before
    report = imp(runtime, "memotrace__bad_time.csv", on_error="skip")
    assert report.messages == 2 and report.skipped == 1
    assert report.errors == [{"file": str(FIXTURES / "memotrace__bad_time.csv"), "line": 3,
                              "reason": "CreateTime is not a unix time: 'yesterday'"}]


def test_telegram_export(conn: Connection, runtime: Runtime) -> None:
    report = imp(runtime, "telegram__supergroup.json")
    assert report.format == "telegram"
    assert (report.messages, report.joins, report.leaves, report.kicks, report.renames) == (
        3, 2, 1, 1, 1)
    assert conn.execute(select(groups.c.name)).scalar_one() == "Python 进阶群"
    text = conn.execute(select(messages.c.text).where(messages.c.platform_message_id == "4")
                        ).scalar_one()
    assert text == "see https://python.org"


def test_chatlog_and_irc_exports(conn: Connection, runtime: Runtime) -> None:
    chatlog = imp(runtime, "chatlog__group.json")
    assert (chatlog.format, chatlog.messages, chatlog.joins) == ("chatlog-json", 2, 1)
    # 阿乙 was invited by nickname, then spoke with a wxid: still one member
    assert conn.execute(select(func.count()).select_from(members)
                        .where(members.c.display_name == "阿乙")).scalar_one() == 1
    # an IRC log's lines carry times only: the day comes from the file name or --date
    with pytest.raises(ImportFailed, match=r"no date .* --date"):
        imp(runtime, "irc__channel.txt", group_name="#ubuntu")
    irc = imp(runtime, "irc__channel.txt", group_name="#ubuntu", day=date(2025, 3, 14))
    assert (irc.format, irc.messages, irc.joins, irc.leaves) == ("irc", 3, 1, 1)
    assert irc.other_notices == {"nick_change": 1}
    first = conn.execute(select(func.min(messages.c.sent_at)).where(
        messages.c.group_id == conn.execute(select(groups.c.id).where(
            groups.c.external_id == "irc:#ubuntu")).scalar_one())).scalar_one()
    assert first.date() == date(2025, 3, 14)


def test_unknown_format_and_missing_file_name_the_file(runtime: Runtime, tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("hello there\n")
    with pytest.raises(ImportFailed, match="unknown export format"):
        do_import_file(runtime.uow, junk, now=utcnow())
    with pytest.raises(ImportFailed, match="no such file"):
        do_import_file(runtime.uow, tmp_path / "missing.csv", now=utcnow())
    latin = tmp_path / "latin_utf8.csv"
    latin.write_bytes((FIXTURES / "memotrace__group.csv").read_bytes().replace(
        "大家好".encode(), "caf\xe9".encode("latin-1")))
    with pytest.raises(ImportFailed, match="not UTF-8"):
        do_import_file(runtime.uow, latin, fmt="memotrace", now=utcnow())


@pytest.mark.parametrize(("name", "fmt", "messages", "joins", "leaves", "recalls"), [
    ("pywxdump__group.csv", "pywxdump", 3, 1, 0, 1),
    ("chatlog__group.csv", "chatlog-csv", 2, 1, 0, 0),
    ("qq__group.txt", "qq-txt", 3, 1, 1, 0),
])
def test_more_formats(conn: Connection, runtime: Runtime, name: str, fmt: str, messages: int,
                      joins: int, leaves: int, recalls: int) -> None:
    report = imp(runtime, name)
    assert report.format == fmt and report.skipped == 0, report.errors
    assert (report.messages, report.joins, report.leaves, report.recalls) == (
        messages, joins, leaves, recalls)
    assert snapshot(conn)["messages"] == messages
    again = imp(runtime, name)
    assert again.messages == 0 and again.joins == 0


def test_qq_details(conn: Connection, runtime: Runtime) -> None:
    imp(runtime, "qq__group.txt")
    assert conn.execute(select(groups.c.name)).scalar_one() == "考研交流群"
    text = conn.execute(select(messages.c.text).where(messages.c.text.like("有人%"))
                        ).scalar_one()
    assert text == "有人一起复习数学吗？\n第二行也算同一条"
    # 小明 spoke with QQ number 10001 and later left: his membership is closed
    xiaoming = member_by_name(conn, "小明")
    assert conn.execute(select(memberships.c.leave_scene).where(
        memberships.c.member_id == xiaoming)).scalar_one() == "left"


def test_membership_message_times_follow_the_file(conn: Connection, runtime: Runtime) -> None:
    imp(runtime, "memotrace__group.csv")
    zs = member_by_name(conn, "张三")
    row = conn.execute(select(memberships.c.first_message_at, memberships.c.last_message_at)
                       .where(memberships.c.member_id == zs)).one()
    sent = sorted(conn.execute(select(messages.c.sent_at).where(messages.c.member_id == zs)
                               ).scalars())
    assert (row.first_message_at, row.last_message_at) == (sent[0], sent[-1])
    # 王五 never spoke and was removed: no times
    wangwu = member_by_name(conn, "王五")
    assert conn.execute(select(memberships.c.first_message_at).where(
        memberships.c.member_id == wangwu)).scalar_one() is None


@pytest.mark.parametrize(("name", "span", "window"), [
    ("memotrace__group.csv", 100_000, 250_000), ("memotrace__group.csv", 1, 250_000),
    ("memotrace__dense.csv", 100_000, 250_000), ("memotrace__dense.csv", 1, 250_000),
    ("memotrace__ends_with_notice.csv", 100_000, 250_000),
    ("memotrace__only_notices.csv", 100_000, 250_000),
    # the history planned and written a few rows at a time: people named in one window
    # speak, leave or come back in a later one
    ("memotrace__group.csv", 1, 3), ("memotrace__dense.csv", 100_000, 1),
    ("memotrace__dense.csv", 1, 4), ("memotrace__ends_with_notice.csv", 1, 1),
    ("memotrace__only_notices.csv", 100_000, 2),
])
def test_columnar_and_row_paths_store_the_same(conn: Connection, runtime: Runtime,
                                               tmp_path: Path, name: str, span: int,
                                               window: int,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The DuckDB path and the row-by-row path give identical rows, keys and counts — also
    when a segment is read in windows of one row, and when the file's history is applied
    a window of rows at a time."""
    monkeypatch.setattr(import_history, "WINDOW_ROWS", window)
    monkeypatch.setattr(columnar, "SPAN", span)
    monkeypatch.setattr(columnar, "FETCH", min(span, columnar.FETCH))
    # with one-row windows, also build the (member, time) index after the rows (SQLite)
    monkeypatch.setattr(sql, "DEFER_INDEX_MIN_ROWS", 1 if span == 1 else 10**9)

    def state() -> tuple[object, ...]:
        msgs = conn.execute(select(messages.c.platform_message_id, messages.c.sent_at,
                                   messages.c.text, messages.c.message_type,
                                   members.c.number)
                            .outerjoin(members, members.c.id == messages.c.member_id)
                            .order_by(messages.c.platform_message_id)).all()
        times = conn.execute(select(members.c.number, memberships.c.joined_at,
                                    memberships.c.left_at, memberships.c.first_message_at,
                                    memberships.c.last_message_at, memberships.c.join_scene)
                             .join(members, members.c.id == memberships.c.member_id)
                             .order_by(members.c.number, memberships.c.id)).all()
        return tuple(msgs), tuple(times), tuple(snapshot(conn).items())

    with runtime.uow.write() as tx:
        savepoint = tx.begin_nested()
        slow = do_import_file(runtime.uow, FIXTURES / name, now=utcnow(), columnar=False)
        slow_state = state()
        savepoint.rollback()
    fast = do_import_file(runtime.uow, FIXTURES / name, now=utcnow())
    assert (fast.reader, slow.reader) == ("columnar", "rows")
    assert {**fast.as_dict(), "reader": "rows"} == slow.as_dict()
    assert state() == slow_state


def test_a_recruiting_groups_export_with_a_notice_between_every_message(
        conn: Connection, runtime: Runtime) -> None:
    """Hand count of memotrace__dense.csv: 12 messages and 12 notices, one between each;
    nicknames with 、, quotes, emoji and leading spaces; an invite list naming a known
    member among new ones; removals and a re-join."""
    report = imp(runtime, "memotrace__dense.csv")
    assert report.reader == "columnar"
    assert (report.messages, report.joins, report.kicks, report.leaves, report.renames,
            report.recalls, report.other_notices) == (12, 10, 2, 0, 1, 1, {"pat": 2})
    assert (report.members, report.new_members, report.unparsed_notices) == (10, 10, 0)
    assert report.ambiguous_names == []
    names = sorted(conn.execute(select(members.c.display_name)).scalars())
    assert names == sorted(["群主", "邓鹏", "王芳", "黎丽、Amy", "小鱼🐟", "陈晨", "“阿杰”",
                            "张一、张二", "张三", "李四"])
    lily = member_by_name(conn, "黎丽、Amy")  # joined by QR, removed, invited back, spoke
    spans = conn.execute(select(memberships.c.join_scene, memberships.c.leave_scene,
                                memberships.c.first_message_at.is_not(None))
                         .where(memberships.c.member_id == lily)
                         .order_by(memberships.c.id)).all()
    assert spans == [("qr", "removed", True), ("invite", None, True)]
    fish = member_by_name(conn, "小鱼🐟")  # the notice's emoji markup is the same person
    assert conn.execute(select(func.count()).select_from(identities).where(
        identities.c.member_id == fish)).scalar_one() == 2  # nickname and wxid
    assert conn.execute(select(groups.c.name)).scalar_one() == "业主群（三期）"
    before = snapshot(conn)
    again = imp(runtime, "memotrace__dense.csv")
    assert (again.messages, again.joins, again.kicks, again.new_members) == (0, 0, 0, 0)
    assert snapshot(conn) == before


def test_files_that_end_with_or_hold_only_notices(conn: Connection, runtime: Runtime) -> None:
    ends = imp(runtime, "memotrace__ends_with_notice.csv")
    assert (ends.reader, ends.messages, ends.joins, ends.members) == ("columnar", 1, 1, 2)
    only = imp(runtime, "memotrace__only_notices.csv")
    assert (only.messages, only.joins, only.kicks, only.renames, only.other_notices) == (
        0, 3, 1, 1, {"pat": 1})
    assert only.members == 4  # 小红, 小绿, 小蓝 and the exporter who invited and removed


def test_a_format_forced_on_another_kind_of_file_is_refused(runtime: Runtime) -> None:
    before = snapshot(runtime.uow.conn)  # type: ignore[attr-defined]
    with pytest.raises(ImportFailed, match="looks like a memotrace export, not qq-txt"):
        imp(runtime, "memotrace__group.csv", fmt="qq-txt")
    with pytest.raises(ImportFailed, match="looks like a telegram export, not irc"):
        imp(runtime, "telegram__supergroup.json", fmt="irc")
    assert snapshot(runtime.uow.conn) == before  # type: ignore[attr-defined]


def has_member_index(conn: Connection) -> bool:
    return any(ix["name"] == MEMBER_INDEX.name for ix in inspect(conn).get_indexes("messages"))


def test_an_index_built_after_is_there_afterwards_and_after_a_rollback(
        conn: Connection, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    sqlite = conn.dialect.name == "sqlite"
    with conn.begin_nested():
        with sql.index_built_after(conn, MEMBER_INDEX, incoming=10**6) as dropped:
            # PostgreSQL keeps it: dropping would lock the table against readers
            assert dropped is sqlite and has_member_index(conn) is not sqlite
        assert has_member_index(conn)
    with (pytest.raises(ZeroDivisionError), conn.begin_nested(),
          sql.index_built_after(conn, MEMBER_INDEX, incoming=10**6)):
        1 / 0  # noqa: B018 — fails half-way: the rollback must bring the index back
    assert has_member_index(conn)
    # a small batch next to the rows already stored keeps the index up to date row by row
    imp(runtime, "memotrace__group.csv")
    monkeypatch.setattr(sql, "DEFER_INDEX_MIN_ROWS", 1)
    with (conn.begin_nested(),
          sql.index_built_after(conn, MEMBER_INDEX, incoming=2) as dropped):
        assert not dropped and has_member_index(conn)


@pytest.mark.parametrize("columnar_path", [True, False])
def test_a_later_export_closes_what_an_earlier_one_opened(
        conn: Connection, runtime: Runtime, tmp_path: Path, columnar_path: bool) -> None:
    """An export taken in two parts (before and after an outage): the second part's
    removals close the memberships the first part stored, on either reader."""
    lines = (FIXTURES / "memotrace__dense.csv").read_text(encoding="utf-8-sig").splitlines()
    parts = [[*lines[:9]], [lines[0], *lines[9:]]]  # the cut falls before 黎丽's removal
    for n, rows in enumerate(parts):
        (tmp_path / str(n)).mkdir()
        path = tmp_path / str(n) / "业主群（三期）.csv"
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        report = do_import_file(runtime.uow, path, now=utcnow(), columnar=columnar_path)
        assert report.reader == ("columnar" if columnar_path else "rows")
    left = dict(conn.execute(select(members.c.display_name, memberships.c.leave_scene)
                             .join(members, members.c.id == memberships.c.member_id)
                             .where(memberships.c.left_at.is_not(None))).all())
    assert left == {"黎丽、Amy": "removed", "小鱼🐟": "removed"}
    lily = member_by_name(conn, "黎丽、Amy")
    assert conn.execute(select(memberships.c.leave_scene).where(
        memberships.c.member_id == lily).order_by(memberships.c.id)).scalars().all() == [
        "removed", None]


HOSTILE_EXPORTS = [  # (fixture, text to poison, format, what the error must say)
    ("memotrace__group.csv", "请问团购价格多少？", "memotrace", "NUL"),
    ("pywxdump__group.csv", "早上好", "pywxdump", "NUL"),
    ("chatlog__group.csv", "大家好", "chatlog-csv", "NUL"),
    ("qq__group.txt", "一起复习", "qq-txt", "NUL"),
    ("irc__channel.txt", "hello", "irc", "NUL"),
    ("chatlog__group.json", None, "chatlog-json", "surrogate"),
    ("telegram__supergroup.json", None, "telegram", "surrogate"),
]


@pytest.mark.parametrize(("name", "needle", "fmt", "says"), HOSTILE_EXPORTS)
def test_nul_and_lone_surrogates_in_an_export_name_the_line(
        conn: Connection, runtime: Runtime, tmp_path: Path, name: str, needle: str | None,
        fmt: str, says: str) -> None:
    """Text PostgreSQL cannot store (NUL) or no database should (a lone surrogate, written
    as a JSON escape) fails the file at its line, on both databases, storing nothing."""
    text = (FIXTURES / name).read_text(encoding="utf-8-sig")
    if says == "NUL":  # into a message's words
        assert needle is not None and needle in text
        poisoned = text.replace(needle, needle[0] + "\x00" + needle[1:], 1)
    else:
        poisoned = text.replace('"text": "', '"text": "\\ud800', 1)
        poisoned = poisoned.replace('"content": "', '"content": "\\ud800', 1)
        assert poisoned != text
    target = tmp_path / name.replace("__", "_")
    target.write_text(poisoned, encoding="utf-8")
    before = snapshot(conn)
    day = {"day": date(2026, 11, 20)} if fmt == "irc" else {}
    with pytest.raises(ImportFailed) as failed:
        do_import_file(runtime.uow, target, fmt=fmt, now=utcnow(), group_name="g", **day)
    assert says in failed.value.error["reason"] and failed.value.error["line"] >= 1, (
        failed.value.error)
    assert snapshot(conn) == before
