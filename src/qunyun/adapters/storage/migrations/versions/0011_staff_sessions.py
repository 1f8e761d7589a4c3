"""sessions that end, tokens that expire, login back-off

Browser sessions are stored (``staff_sessions``: logging out, a password or role change and
disabling an account end them); API tokens get an expiry; failed sign-ins are counted per
account and client (``login_failures``) for the back-off.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 15:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from qunyun.adapters.storage.tables import Id, UTCDateTime

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', UTCDateTime(), nullable=True))
    op.create_table(
        'staff_sessions',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('user_id', Id, nullable=False),
        sa.Column('sid_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.Column('ended_at', UTCDateTime(), nullable=True),
        sa.Column('end_reason', sa.String(length=32), nullable=True),
        sa.Column('client', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['staff_users.id'],
                                name='fk_staff_sessions_user_id_staff_users',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_staff_sessions'),
        sa.UniqueConstraint('sid_hash', name='uq_staff_sessions_sid_hash'),
    )
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_staff_sessions_user', ['user_id', 'ended_at'], unique=False)
    op.create_table(
        'login_failures',
        sa.Column('key', sa.String(length=160), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('first_at', UTCDateTime(), nullable=False),
        sa.Column('blocked_until', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('key', name='pk_login_failures'),
    )


def downgrade() -> None:
    op.drop_table('login_failures')
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_staff_sessions_user')
    op.drop_table('staff_sessions')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
