"""Alembic environment: runs on the connection handed in by ``qunyun.adapters.storage.migrate``."""

from alembic import context

from qunyun.adapters.storage.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through qunyun.adapters.storage.migrate")

context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
with context.begin_transaction():
    context.run_migrations()
