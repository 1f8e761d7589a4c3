"""Entry thresholds: a join request's upload link (share-to-join screenshots) and the
screenshot it received

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04 15:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0025'
down_revision: str | None = '0024'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('join_requests') as batch:
        batch.add_column(sa.Column('token', sa.String(32)))
        batch.add_column(sa.Column('screenshot', sa.String(200), nullable=False,
                                   server_default=''))
        batch.create_unique_constraint('uq_join_requests_token', ['token'])


def downgrade() -> None:
    with op.batch_alter_table('join_requests') as batch:
        batch.drop_constraint('uq_join_requests_token', type_='unique')
        batch.drop_column('screenshot')
        batch.drop_column('token')
