"""member_counts: per-member totals of events by kind and of messages

Revision ID: 0004
Revises: 0003

Backfilled from member_events and messages, so segments over existing data are right at once.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = """
INSERT INTO member_counts (member_id, kind, n)
SELECT member_id, kind, count(*) FROM member_events WHERE member_id IS NOT NULL
GROUP BY member_id, kind
UNION ALL
SELECT member_id, 'message', count(*) FROM messages
WHERE member_id IS NOT NULL AND direction = 'in' GROUP BY member_id
"""


def upgrade() -> None:
    op.create_table('member_counts',
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_counts_member_id_members')),
    sa.PrimaryKeyConstraint('member_id', 'kind', name=op.f('pk_member_counts'))
    )
    with op.batch_alter_table('member_counts', schema=None) as batch_op:
        batch_op.create_index('ix_member_counts_kind_n', ['kind', 'n'], unique=False)
    op.execute(BACKFILL)


def downgrade() -> None:
    with op.batch_alter_table('member_counts', schema=None) as batch_op:
        batch_op.drop_index('ix_member_counts_kind_n')
    op.drop_table('member_counts')
