"""Campaign plans: the plan, its stages and its daily targets

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-04 16:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from qunyun.adapters.storage.tables import Id, UTCDateTime

revision: str = '0028'
down_revision: str | None = '0027'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'plans',
        sa.Column('id', Id, primary_key=True, autoincrement=True),
        sa.Column('name', sa.String(128), nullable=False, unique=True),
        sa.Column('activity_id', Id, sa.ForeignKey('activities.id')),
        sa.Column('group_ids', sa.JSON(), nullable=False),
        sa.Column('starts_on', sa.String(10), nullable=False),
        sa.Column('ends_on', sa.String(10), nullable=False),
        sa.Column('goal', sa.JSON(), nullable=False),
        sa.Column('margin', sa.Float(), nullable=False),
        sa.Column('created_by', sa.String(128), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
    )
    op.create_table(
        'plan_stages',
        sa.Column('id', Id, primary_key=True, autoincrement=True),
        sa.Column('plan_id', Id, sa.ForeignKey('plans.id'), nullable=False),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('name', sa.String(128), nullable=False),
        sa.Column('starts_on', sa.String(10), nullable=False),
        sa.Column('ends_on', sa.String(10), nullable=False),
    )
    op.create_index('ix_plan_stages_plan', 'plan_stages', ['plan_id'])
    op.create_table(
        'plan_targets',
        sa.Column('plan_id', Id, sa.ForeignKey('plans.id'), primary_key=True,
                  autoincrement=False),
        sa.Column('day', sa.String(10), primary_key=True),
        sa.Column('metric', sa.String(16), primary_key=True),
        sa.Column('value', sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('plan_targets')
    op.drop_index('ix_plan_stages_plan', table_name='plan_stages')
    op.drop_table('plan_stages')
    op.drop_table('plans')
