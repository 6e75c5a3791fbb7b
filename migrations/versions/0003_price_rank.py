"""offers ranked by price_rank

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 23:46:47.180459
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('price_rank', sa.Float(), server_default='1e12', nullable=False))
    op.execute("UPDATE offers SET price_rank = COALESCE(price_per_hour, 1e12)")
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_offers_price'))
        batch_op.drop_index(batch_op.f('ix_offers_ram_price'))
        batch_op.create_index('ix_offers_rank', ['price_rank', 'ram_mb', 'vcpus', 'account_id', 'location_id', 'size_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.drop_index('ix_offers_rank')
        batch_op.create_index(batch_op.f('ix_offers_ram_price'), ['ram_mb', 'price_per_hour'], unique=False)
        batch_op.create_index(batch_op.f('ix_offers_price'), ['price_per_hour'], unique=False)
        batch_op.drop_column('price_rank')

