"""opt-outs record their source; campaign history

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 20:30:00

Suppressions made before keep a null source.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("suppressions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=64), nullable=True))
    op.create_table(
        "campaign_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=20), nullable=False),
        sa.Column("api_key_id", sa.String(length=36), nullable=True),
        sa.Column("api_key_prefix", sa.String(length=16), nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_campaign_history_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_history")),
    )
    with op.batch_alter_table("campaign_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaign_history_campaign_id_id"), ["campaign_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("campaign_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_history_campaign_id_id"))
    op.drop_table("campaign_history")
    with op.batch_alter_table("suppressions", schema=None) as batch_op:
        batch_op.drop_column("source")
