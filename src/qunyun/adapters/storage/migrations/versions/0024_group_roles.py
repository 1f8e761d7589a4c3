"""People's roles in a group as the team assigns them (owner, presenter, expert, atmosphere,
advisor)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 12:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from qunyun.adapters.storage.tables import Id, UTCDateTime

revision: str = '0024'
down_revision: str | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'group_roles',
        sa.Column('id', Id, primary_key=True, autoincrement=True),
        sa.Column('group_id', Id, sa.ForeignKey('groups.id'), nullable=False),
        sa.Column('member_id', Id, sa.ForeignKey('members.id'), nullable=False),
        sa.Column('role', sa.String(16), nullable=False),
        sa.Column('assigned_by', sa.String(64), nullable=False, server_default=''),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.UniqueConstraint('group_id', 'member_id', 'role', name='uq_group_roles'),
    )
    op.create_index('ix_group_roles_member', 'group_roles', ['member_id'])


def downgrade() -> None:
    op.drop_index('ix_group_roles_member', table_name='group_roles')
    op.drop_table('group_roles')
