"""A plan's review: retro notes per stage and the problem log

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-04 17:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from qunyun.adapters.storage.tables import Id, UTCDateTime

revision: str = '0030'
down_revision: str | None = '0029'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('plan_stages') as batch:
        for column in ('retro_worked', 'retro_not', 'retro_change'):
            batch.add_column(sa.Column(column, sa.Text(), nullable=False, server_default=''))
    op.create_table(
        'plan_problems',
        sa.Column('id', Id, primary_key=True, autoincrement=True),
        sa.Column('plan_id', Id, sa.ForeignKey('plans.id'), nullable=False),
        sa.Column('issue', sa.Text(), nullable=False),
        sa.Column('owner_id', Id, sa.ForeignKey('staff_users.id')),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('resolution', sa.Text(), nullable=False, server_default=''),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('closed_at', UTCDateTime()),
    )
    op.create_index('ix_plan_problems_plan', 'plan_problems', ['plan_id'])


def downgrade() -> None:
    op.drop_index('ix_plan_problems_plan', table_name='plan_problems')
    op.drop_table('plan_problems')
    with op.batch_alter_table('plan_stages') as batch:
        for column in ('retro_change', 'retro_not', 'retro_worked'):
            batch.drop_column(column)
