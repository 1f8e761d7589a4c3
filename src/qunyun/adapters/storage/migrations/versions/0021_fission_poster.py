"""A fission campaign's poster layout

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 06:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('fission_campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('poster', sa.JSON(), nullable=False,
                                      server_default='{}'))


def downgrade() -> None:
    with op.batch_alter_table('fission_campaigns', schema=None) as batch_op:
        batch_op.drop_column('poster')
