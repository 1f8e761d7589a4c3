"""A worker's batch of updates is one savepoint; a bad update sends the batch back to one
savepoint each, and what the batch read once (groups, settings) never goes stale."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import OperationalError

from qunyun.adapters.platforms.telegram.fake import FakeTelegram
from qunyun.adapters.storage.tables import (
    groups,
    inbound_events,
    member_counts,
    member_tags,
    memberships,
    messages,
    raw_inbox,
)
from qunyun.adapters.storage.tables import members as mb
from qunyun.bootstrap import Runtime, telegram_clients
from qunyun.services import counts, members, tags, telegram
from qunyun.services import raw_inbox as raw_inbox_service
from qunyun.services.users import SYSTEM
from tests.adapters.telegram.conftest import CHAT
from tests.adapters.telegram.test_connector import connect, pump


def _count(conn: Connection, table: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_broken_update_amid_good_ones_fails_alone_and_the_rest_count_once(
        conn: Connection, tg_runtime: Runtime, tg: FakeTelegram) -> None:
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    tg.message(token, CHAT, 501, "小王", "第一条")
    telegram.poll_once(tg_runtime.uow, box=tg_runtime.box,
                       clients=telegram_clients(tg_runtime),
                       bot_id=bot["bot_id"], now=tg_runtime.now())
    telegram.store_update(conn, bot_id=bot["bot_id"], now=tg_runtime.now(),
                          body=json.dumps({"update_id": 99, "message": {"chat": {
                              "id": CHAT, "type": "supergroup"}, "date": "yesterday"}}))
    tg.message(token, CHAT, 502, 'Lily "L"', "第二条")
    stats = pump(tg_runtime, bot["bot_id"])
    assert (stats.processed, stats.failed) == (3, 1)
    # the first try of the batch was rolled back: each good update is stored once
    assert sorted(conn.execute(select(messages.c.text)).scalars()) == ["第一条", "第二条"]
    assert _count(conn, inbound_events) == 3  # the bot's join, two messages
    assert sorted((str(s), int(n)) for s, n in conn.execute(
        select(raw_inbox.c.status, func.count()).group_by(raw_inbox.c.status))) == [
        ("failed", 1), ("processed", 3)]


def test_a_title_changed_within_a_batch_is_read_by_the_next_update(
        conn: Connection, tg_runtime: Runtime, tg: FakeTelegram) -> None:
    token, bot = connect(tg_runtime, tg)
    tg.bot_added(token, CHAT)
    tg.message(token, CHAT, 501, "小王", "早")
    tg.message(token, CHAT, 501, "小王", "改名了", chat={"id": CHAT, "type": "supergroup",
                                                       "title": "新名字·二班"})
    tg.message(token, CHAT, 502, "Lily", "晚", chat={"id": CHAT, "type": "supergroup",
                                                    "title": "新名字·二班"})
    assert pump(tg_runtime, bot["bot_id"]).processed == 4
    assert conn.execute(select(groups.c.name)).scalar_one() == "新名字·二班"


def test_a_busy_database_leaves_the_update_pending_then_gives_up(
        conn: Connection, tg_runtime: Runtime, tg: FakeTelegram) -> None:
    _token, bot = connect(tg_runtime, tg)
    telegram.store_update(conn, bot_id=bot["bot_id"], now=tg_runtime.now(),
                          body=json.dumps({"update_id": 1}))
    telegram.store_update(conn, bot_id=bot["bot_id"], now=tg_runtime.now(),
                          body=json.dumps({"update_id": 2}))

    class Nothing:
        def flush(self, conn: Connection) -> None:
            pass

    def handle(row: dict[str, Any], batch: Nothing) -> int:
        if json.loads(row["body"])["update_id"] == 2:
            raise OperationalError("UPDATE members", {}, Exception("deadlock detected"))
        return 1

    for attempt in range(1, raw_inbox_service.BUSY_ATTEMPTS + 1):
        rows = raw_inbox_service.claim(conn, "telegram", 10)
        handled = raw_inbox_service.handle_claimed(conn, rows, handle, new_batch=Nothing,
                                                   expected=(ValueError,), what="update")
        busy = attempt < raw_inbox_service.BUSY_ATTEMPTS
        assert (handled.deferred, handled.failed) == ((1, 0) if busy else (0, 1))
        assert len(handled.done) == (1 if attempt == 1 else 0)
    error = conn.execute(select(raw_inbox.c.error).where(raw_inbox.c.status == "failed")
                         ).scalar_one()
    assert "deadlock detected" in error


def test_what_a_batch_defers_is_written_before_anything_reads_it(
        conn: Connection, tg_runtime: Runtime, tg: FakeTelegram) -> None:
    """Last seen, message totals and a membership's message times are written once per
    batch: the same values as one event at a time, in place before a rule tag reads them
    and before a leave closes the membership."""
    token, bot = connect(tg_runtime, tg)
    talker = tags.do_create_tag(conn, actor=SYSTEM, name="话多", kind="rule",
                                rule="messages >= 2", clock=tg_runtime.clock())
    tg.bot_added(token, CHAT)
    tg.join(token, CHAT, 501, "小王")
    posted = [tg.message(token, CHAT, 501, "小王", text)["message"]["date"]
              for text in ("早", "今天打卡", "晚安")]
    tg.message(token, CHAT, 503, "路人", "路过")
    left = tg.leave(token, CHAT, 501, "小王")["chat_member"]["date"]
    assert pump(tg_runtime, bot["bot_id"]).processed == 7
    wang = members.find_identity(conn, platform="telegram", kind="user", external_id="501")
    passer = members.find_identity(conn, platform="telegram", kind="user", external_id="503")
    assert wang is not None and passer is not None
    totals = {int(m): int(n) for m, n in conn.execute(select(
        member_counts.c.member_id, member_counts.c.n).where(
        member_counts.c.kind == counts.MESSAGE))}
    assert totals == {wang: 3, passer: 1}
    seen = conn.execute(select(mb.c.last_seen_at).where(mb.c.id == wang)).scalar_one()
    assert seen == datetime.fromtimestamp(left, UTC)  # the leave came after the messages
    span = conn.execute(select(memberships.c.first_message_at, memberships.c.last_message_at,
                               memberships.c.left_at)
                        .where(memberships.c.member_id == wang)).one()
    assert span == tuple(datetime.fromtimestamp(t, UTC) for t in (posted[0], posted[-1], left))
    holders = set(conn.execute(select(member_tags.c.member_id)
                               .where(member_tags.c.tag_id == talker)).scalars())
    assert holders == {wang}
