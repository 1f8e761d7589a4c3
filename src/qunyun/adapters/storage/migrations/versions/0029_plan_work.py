"""A plan's people, checklist and budget, and when a short day was raised to the lead

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-04 16:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from qunyun.adapters.storage.tables import Id, UTCDateTime

revision: str = '0029'
down_revision: str | None = '0028'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'plan_roles',
        sa.Column('id', Id, primary_key=True, autoincrement=True),
        sa.Column('plan_id', Id, sa.ForeignKey('plans.id'), nullable=False),
        sa.Column('user_id', Id, sa.ForeignKey('staff_users.id'), nullable=False),
        sa.Column('role', sa.String(16), nullable=False),
        sa.Column('group_id', Id, sa.ForeignKey('groups.id')),
        sa.UniqueConstraint('plan_id', 'user_id', 'role', 'group_id', name='uq_plan_roles'),
    )
    op.create_table(
        'plan_items',
        sa.Column('id', Id, primary_key=True, autoincrement=True),
        sa.Column('plan_id', Id, sa.ForeignKey('plans.id'), nullable=False),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('title', sa.String(200), nullable=False),
        sa.Column('owner_id', Id, sa.ForeignKey('staff_users.id')),
        sa.Column('due_on', sa.String(10)),
        sa.Column('status', sa.String(16), nullable=False),
    )
    op.create_index('ix_plan_items_plan', 'plan_items', ['plan_id'])
    op.create_table(
        'plan_budget',
        sa.Column('id', Id, primary_key=True, autoincrement=True),
        sa.Column('plan_id', Id, sa.ForeignKey('plans.id'), nullable=False),
        sa.Column('category', sa.String(16), nullable=False),
        sa.Column('title', sa.String(200), nullable=False),
        sa.Column('planned_fen', sa.BigInteger(), nullable=False),
        sa.Column('actual_fen', sa.BigInteger(), nullable=False),
    )
    op.create_index('ix_plan_budget_plan', 'plan_budget', ['plan_id'])
    with op.batch_alter_table('plan_targets') as batch:
        batch.add_column(sa.Column('alerted_at', UTCDateTime()))


def downgrade() -> None:
    with op.batch_alter_table('plan_targets') as batch:
        batch.drop_column('alerted_at')
    op.drop_index('ix_plan_budget_plan', table_name='plan_budget')
    op.drop_table('plan_budget')
    op.drop_index('ix_plan_items_plan', table_name='plan_items')
    op.drop_table('plan_items')
    op.drop_table('plan_roles')
