"""The migrations produce exactly the schema the code declares, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select, text

from qunyun.adapters.storage import migrate
from qunyun.adapters.storage.tables import counters, member_counts, memberships, metadata


def test_schema_matches_tables(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, metadata)
    assert diff == []


def test_at_head_and_counter_seeded(migrated_engine: Engine) -> None:
    assert migrate.current_revision(migrated_engine) == migrate.head_revision()
    with migrated_engine.connect() as conn:
        value = conn.execute(select(counters.c.value)
                             .where(counters.c.name == "member_number")).scalar()
    assert value is not None and value >= 10000


def test_upgrade_is_idempotent(migrated_engine: Engine) -> None:
    migrate.upgrade(migrated_engine)
    assert migrate.current_revision(migrated_engine) == migrate.head_revision()


def test_0002_and_0004_backfill_existing_rows(db_kind: str,
                                                              tmp_path: Path) -> None:
    from qunyun.adapters.storage.db import make_engine
    from tests.conftest import new_database_url

    engine = make_engine(new_database_url(db_kind, tmp_path))
    try:
        migrate.upgrade(engine, "0001")
        t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO members (id, number, display_name, attributes, created_at, "
                "first_seen_at, last_seen_at) VALUES (1, 10001, 'a', '{}', :t, :t, :t)"), {"t": t0})
            conn.execute(text(
                "INSERT INTO groups (id, platform, external_id, name, group_type, series, "
                "capacity, state, rules_text, announcement, settings, created_at, updated_at) "
                "VALUES (1, 'x', 'g', 'g', 'long_term', '', 500, 'active', '', '', '{}', :t, :t)"),
                {"t": t0})
            conn.execute(text(
                "INSERT INTO memberships (member_id, group_id, joined_at, join_scene, channel, "
                "join_observed) VALUES (1, 1, :t, 'qr', '', true)"), {"t": t0})
            for i, minutes in enumerate((5, 90, 30)):
                conn.execute(text(
                    "INSERT INTO messages (group_id, member_id, platform_message_id, sent_at, "
                    "direction, message_type, text, recalled) "
                    "VALUES (1, 1, :p, :t, 'in', 'text', 'hi', false)"),
                    {"p": f"m{i}", "t": t0 + timedelta(minutes=minutes)})
            conn.execute(text(
                "INSERT INTO member_events (member_id, group_id, kind, occurred_at, data) "
                "VALUES (1, 1, 'joined', :t, '{}'), (NULL, 1, 'group_renamed', :t, '{}')"),
                {"t": t0})
        migrate.upgrade(engine)
        with engine.connect() as conn:
            row = conn.execute(select(memberships.c.first_message_at,
                                      memberships.c.last_message_at)).one()
        assert row.first_message_at == t0 + timedelta(minutes=5)
        assert row.last_message_at == t0 + timedelta(minutes=90)
        with engine.connect() as conn:  # 0004 backfills the per-member totals
            totals = set(conn.execute(select(member_counts.c.member_id, member_counts.c.kind,
                                             member_counts.c.n)))
        assert totals == {(1, "message", 3), (1, "joined", 1)}
    finally:
        engine.dispose()


def test_0013_moves_wecom_callbacks_into_the_raw_inbox(db_kind: str, tmp_path: Path) -> None:
    """Pending and processed callbacks keep their place and their digest (so a retry of a
    callback received before the upgrade is still one row), and downgrading puts them back."""
    from alembic import command

    from qunyun.adapters.platforms.base import body_digest
    from qunyun.adapters.storage.db import make_engine
    from qunyun.adapters.storage.tables import raw_inbox
    from qunyun.services import raw_inbox as inbox
    from tests.conftest import new_database_url

    engine = make_engine(new_database_url(db_kind, tmp_path))
    t0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
    try:
        migrate.upgrade(engine, "0012")
        with engine.begin() as conn:
            for i, (xml, status) in enumerate((("<xml>a</xml>", "processed"),
                                               ("<xml>b</xml>", "pending"))):
                conn.execute(text(
                    "INSERT INTO wecom_callbacks (corp_id, digest, xml, received_at, status, "
                    "attempts, error) VALUES ('ww1', :d, :x, :t, :s, :n, '')"),
                    {"d": body_digest(xml), "x": xml, "t": t0, "s": status, "n": 1 - i})
        migrate.upgrade(engine)
        with engine.begin() as conn:
            rows = conn.execute(select(raw_inbox.c.platform, raw_inbox.c.account,
                                       raw_inbox.c.body, raw_inbox.c.status,
                                       raw_inbox.c.attempts).order_by(raw_inbox.c.id)).all()
            assert [tuple(r) for r in rows] == [("wecom", "ww1", "<xml>a</xml>", "processed", 1),
                                                ("wecom", "ww1", "<xml>b</xml>", "pending", 0)]
            # WeCom retries the callback received before the upgrade: still one row
            assert inbox.store(conn, platform="wecom", account="ww1", body="<xml>b</xml>",
                               now=t0) is None
            assert [r["body"] for r in inbox.claim(conn, "wecom", 10)] == ["<xml>b</xml>"]
        cfg = migrate.alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0012")
        with engine.connect() as conn:
            back = conn.execute(text("SELECT corp_id, xml, status FROM wecom_callbacks "
                                     "ORDER BY id")).all()
        assert [tuple(r) for r in back] == [("ww1", "<xml>a</xml>", "processed"),
                                            ("ww1", "<xml>b</xml>", "pending")]
    finally:
        engine.dispose()
