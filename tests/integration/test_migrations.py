"""The migrations produce exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select

from qunyun.adapters.storage import migrate
from qunyun.adapters.storage.tables import counters, metadata


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
