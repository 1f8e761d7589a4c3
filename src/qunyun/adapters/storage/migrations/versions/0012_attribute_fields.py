"""custom attributes are personal data unless marked otherwise

``attribute_fields`` says, per attribute name, whether it is personal (masked for viewers,
not filterable by them) and what kind of value it holds (how to mask it). Attributes already
stored are listed as personal (their kind is guessed from the name when shown).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 16:00:00
"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from qunyun.adapters.storage.tables import UTCDateTime

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        'attribute_fields',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('personal', sa.Boolean(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('updated_by', sa.String(length=128), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name', name='pk_attribute_fields'),
    )
    bind = op.get_bind()
    names = bind.execute(sa.text("SELECT DISTINCT name FROM member_attributes")).scalars()
    now = datetime.now(UTC)
    rows = [{"name": n, "personal": True, "kind": "", "updated_by": "migration",
             "updated_at": now} for n in names]
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_table('attribute_fields')
