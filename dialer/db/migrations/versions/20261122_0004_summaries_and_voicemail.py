"""call summaries and voicemail message

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 22:27:50.457044
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_summaries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column(
            "attempt_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("phone_number", sa.String(length=20), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["call_attempts.id"],
            name=op.f("fk_call_summaries_attempt_id_call_attempts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_call_summaries_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_summaries")),
        sa.UniqueConstraint("attempt_id", name=op.f("uq_call_summaries_attempt_id")),
    )
    with op.batch_alter_table("call_summaries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_call_summaries_tenant_id_phone_number_created_at"),
            ["tenant_id", "phone_number", "created_at"],
            unique=False,
        )

    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("voicemail_message", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("voicemail_message")

    with op.batch_alter_table("call_summaries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_summaries_tenant_id_phone_number_created_at"))

    op.drop_table("call_summaries")
