"""crm: attributes, tag rules and history, service records, blacklist, merges, segments, lead lists

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 10:39:43.003976
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import qunyun.adapters.storage.tables

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('segments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('expression', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', qunyun.adapters.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', qunyun.adapters.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segments')),
    sa.UniqueConstraint('name', name=op.f('uq_segments_name'))
    )
    op.create_table('blacklist',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('added_by', sa.String(length=128), nullable=False),
    sa.Column('added_at', qunyun.adapters.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', qunyun.adapters.storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lifted_at', qunyun.adapters.storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lifted_by', sa.String(length=128), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_blacklist_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_blacklist'))
    )
    with op.batch_alter_table('blacklist', schema=None) as batch_op:
        batch_op.create_index('ix_blacklist_member', ['member_id', 'lifted_at'], unique=False)

    op.create_table('lead_lists',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('segment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('formula', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', qunyun.adapters.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', qunyun.adapters.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['segment_id'], ['segments.id'], name=op.f('fk_lead_lists_segment_id_segments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_lists')),
    sa.UniqueConstraint('name', name=op.f('uq_lead_lists_name'))
    )
    op.create_table('member_attributes',
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value_text', sa.Text(), nullable=False),
    sa.Column('value_num', sa.Float(), nullable=True),
    sa.Column('updated_at', qunyun.adapters.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_attributes_member_id_members')),
    sa.PrimaryKeyConstraint('member_id', 'name', name=op.f('pk_member_attributes'))
    )
    with op.batch_alter_table('member_attributes', schema=None) as batch_op:
        batch_op.create_index('ix_member_attributes_name_num', ['name', 'value_num'], unique=False)

    op.create_table('member_merges',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source_member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('target_member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', qunyun.adapters.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('by', sa.String(length=128), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('moved', sa.JSON(), nullable=False),
    sa.Column('undone_at', qunyun.adapters.storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('undone_by', sa.String(length=128), nullable=True),
    sa.ForeignKeyConstraint(['source_member_id'], ['members.id'], name=op.f('fk_member_merges_source_member_id_members')),
    sa.ForeignKeyConstraint(['target_member_id'], ['members.id'], name=op.f('fk_member_merges_target_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_merges'))
    )
    op.create_table('merge_dismissals',
    sa.Column('member_a', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_b', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', qunyun.adapters.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('by', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['member_a'], ['members.id'], name=op.f('fk_merge_dismissals_member_a_members')),
    sa.ForeignKeyConstraint(['member_b'], ['members.id'], name=op.f('fk_merge_dismissals_member_b_members')),
    sa.PrimaryKeyConstraint('member_a', 'member_b', name=op.f('pk_merge_dismissals'))
    )
    op.create_table('service_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('author_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('author', sa.String(length=128), nullable=False),
    sa.Column('created_at', qunyun.adapters.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_at', qunyun.adapters.storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('done_at', qunyun.adapters.storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('done_by', sa.String(length=128), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['staff_users.id'], name=op.f('fk_service_records_author_id_staff_users')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_service_records_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_records'))
    )
    with op.batch_alter_table('service_records', schema=None) as batch_op:
        batch_op.create_index('ix_service_records_due', ['done_at', 'due_at'], unique=False)
        batch_op.create_index('ix_service_records_member', ['member_id', 'created_at'], unique=False)

    op.create_table('tag_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tag_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('at', qunyun.adapters.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('by', sa.String(length=128), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_tag_events_member_id_members')),
    sa.ForeignKeyConstraint(['tag_id'], ['tags.id'], name=op.f('fk_tag_events_tag_id_tags')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tag_events'))
    )
    with op.batch_alter_table('tag_events', schema=None) as batch_op:
        batch_op.create_index('ix_tag_events_member_at', ['member_id', 'at'], unique=False)

    with op.batch_alter_table('member_events', schema=None) as batch_op:
        batch_op.create_index('ix_member_events_kind_member', ['kind', 'member_id', 'occurred_at'], unique=False)

    with op.batch_alter_table('member_tags', schema=None) as batch_op:
        batch_op.create_index('ix_member_tags_tag', ['tag_id', 'member_id'], unique=False)

    # the unused JSON bag gives way to member_attributes (typed, indexable per name); a plain
    # DROP COLUMN (SQLite >= 3.35) because a batch rebuild of members breaks foreign keys
    op.execute("ALTER TABLE members DROP COLUMN attributes")
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone', sa.String(length=32), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('address', sa.Text(), nullable=False, server_default=''))
        batch_op.create_index('ix_members_phone', ['phone'], unique=False)

    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=8), nullable=False, server_default='manual'))
        batch_op.add_column(sa.Column('rule', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('description', sa.Text(), nullable=False, server_default=''))



def downgrade() -> None:
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.drop_column('description')
        batch_op.drop_column('rule')
        batch_op.drop_column('kind')

    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_index('ix_members_phone')
        batch_op.drop_column('address')
        batch_op.drop_column('phone')
        batch_op.add_column(sa.Column('attributes', sa.JSON(), nullable=False, server_default='{}'))

    with op.batch_alter_table('member_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_member_tags_tag')

    with op.batch_alter_table('member_events', schema=None) as batch_op:
        batch_op.drop_index('ix_member_events_kind_member')

    with op.batch_alter_table('tag_events', schema=None) as batch_op:
        batch_op.drop_index('ix_tag_events_member_at')

    op.drop_table('tag_events')
    with op.batch_alter_table('service_records', schema=None) as batch_op:
        batch_op.drop_index('ix_service_records_member')
        batch_op.drop_index('ix_service_records_due')

    op.drop_table('service_records')
    op.drop_table('merge_dismissals')
    op.drop_table('member_merges')
    with op.batch_alter_table('member_attributes', schema=None) as batch_op:
        batch_op.drop_index('ix_member_attributes_name_num')

    op.drop_table('member_attributes')
    op.drop_table('lead_lists')
    with op.batch_alter_table('blacklist', schema=None) as batch_op:
        batch_op.drop_index('ix_blacklist_member')

    op.drop_table('blacklist')
    op.drop_table('segments')
