"""Fission rewards shipped with a tracking number

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 06:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from qunyun.adapters.storage.tables import UTCDateTime

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('fission_rewards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tracking', sa.String(length=64), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('updated_at', UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('fission_rewards', schema=None) as batch_op:
        batch_op.drop_column('updated_at')
        batch_op.drop_column('tracking')
