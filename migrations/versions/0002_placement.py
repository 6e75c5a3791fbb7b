"""placement: zones, groups, health, quota, cursors

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 23:33:44.554291
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('scheduler_cursors',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('position', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_scheduler_cursors'))
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consecutive_failures', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('cooldown_until', sa.DateTime(), nullable=True))

    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('zone', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('group_name', sa.String(length=255), nullable=True))
        batch_op.create_index('ix_nodes_project_group', ['project_id', 'group_name'], unique=False)

    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_nodes', sa.Integer(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_column('max_nodes')

    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.drop_index('ix_nodes_project_group')
        batch_op.drop_column('group_name')
        batch_op.drop_column('zone')

    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('cooldown_until')
        batch_op.drop_column('consecutive_failures')

    op.drop_table('scheduler_cursors')
