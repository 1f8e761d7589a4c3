"""Join requests and the entry gate's decisions

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 05:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from qunyun.adapters.storage.tables import UTCDateTime

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'join_requests',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('group_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('channel', sa.String(length=128), nullable=False),
        sa.Column('bio', sa.Text(), nullable=False),
        sa.Column('answers', sa.JSON(), nullable=False),
        sa.Column('requested_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('decided_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('decided_by', sa.String(length=128), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['group_id'], ['groups.id'],
                                name=op.f('fk_join_requests_group_id_groups')),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'],
                                name=op.f('fk_join_requests_member_id_members')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_join_requests')),
    )
    with op.batch_alter_table('join_requests', schema=None) as batch_op:
        batch_op.create_index('ix_join_requests_group', ['group_id', 'status', 'requested_at'],
                              unique=False)
        batch_op.create_index('ix_join_requests_member', ['member_id', 'status'],
                              unique=False)
        batch_op.create_index('ix_join_requests_status', ['status', 'requested_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('join_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_join_requests_status')
        batch_op.drop_index('ix_join_requests_member')
        batch_op.drop_index('ix_join_requests_group')
    op.drop_table('join_requests')
