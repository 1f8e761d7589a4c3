"""Group lifecycle: when a group entered its state, and when a recruiting group starts

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 12:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from qunyun.adapters.storage.tables import UTCDateTime

revision: str = '0023'
down_revision: str | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('groups', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state_since', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('starts_at', UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('groups', schema=None) as batch_op:
        batch_op.drop_column('starts_at')
        batch_op.drop_column('state_since')
