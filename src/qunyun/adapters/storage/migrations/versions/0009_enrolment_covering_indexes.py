"""enrolment covering indexes

The cohort report reads a series' participants (issue → member) and then every enrolment of
those members (member → issue), both only where status is 'enrolled'. With status inside the
indexes both reads stay in the index instead of fetching each scattered row for its status:
the window pass over all 897k enrolments of the bench 3.0 → 1.8 s, one series' 70k 260 →
~170 ms.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 22:50:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('enrolments', schema=None) as batch_op:
        batch_op.drop_index('ix_enrolments_member')
        batch_op.create_index('ix_enrolments_member', ['member_id', 'status', 'activity_id'],
                              unique=False)
        batch_op.create_index('ix_enrolments_activity_status',
                              ['activity_id', 'status', 'member_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('enrolments', schema=None) as batch_op:
        batch_op.drop_index('ix_enrolments_activity_status')
        batch_op.drop_index('ix_enrolments_member')
        batch_op.create_index('ix_enrolments_member', ['member_id', 'activity_id'],
                              unique=False)
