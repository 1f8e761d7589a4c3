"""Merging small groups into a target: the merge and each member's move

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-04 15:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from qunyun.adapters.storage.tables import Id, UTCDateTime

revision: str = '0027'
down_revision: str | None = '0026'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'group_merges',
        sa.Column('id', Id, primary_key=True, autoincrement=True),
        sa.Column('platform', sa.String(32), nullable=False),
        sa.Column('target_group_id', Id, sa.ForeignKey('groups.id'), nullable=False),
        sa.Column('overflow_group_id', Id, sa.ForeignKey('groups.id')),
        sa.Column('source_group_ids', sa.JSON(), nullable=False),
        sa.Column('invite_text', sa.Text(), nullable=False),
        sa.Column('gap_minutes', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('created_by', sa.String(128), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('finish_at', UTCDateTime(), nullable=False),
        sa.Column('finished_at', UTCDateTime()),
    )
    op.create_table(
        'group_merge_members',
        sa.Column('id', Id, primary_key=True, autoincrement=True),
        sa.Column('merge_id', Id, sa.ForeignKey('group_merges.id'), nullable=False),
        sa.Column('member_id', Id, sa.ForeignKey('members.id'), nullable=False),
        sa.Column('from_group_id', Id, sa.ForeignKey('groups.id'), nullable=False),
        sa.Column('to_group_id', Id, sa.ForeignKey('groups.id'), nullable=False),
        sa.Column('invited_at', UTCDateTime()),
        sa.UniqueConstraint('merge_id', 'member_id', name='uq_group_merge_members'),
    )


def downgrade() -> None:
    op.drop_table('group_merge_members')
    op.drop_table('group_merges')
