"""recipient lists imported in the background: state, progress, rejected rows

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 15:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Lists imported before this revision were imported whole: ready, every row read.
    with op.batch_alter_table("recipient_lists", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("state", sa.String(length=16), nullable=False, server_default="ready")
        )
        batch_op.add_column(sa.Column("failure_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("rows_read", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("rejected_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE recipient_lists SET rows_read = row_count")
    op.create_table(
        "recipient_list_rejections",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("list_id", sa.String(length=36), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("phone_number", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["recipient_lists.id"],
            name=op.f("fk_recipient_list_rejections_list_id_recipient_lists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipient_list_rejections")),
    )
    with op.batch_alter_table("recipient_list_rejections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recipient_list_rejections_list_id_id"), ["list_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("recipient_list_rejections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recipient_list_rejections_list_id_id"))
    op.drop_table("recipient_list_rejections")
    with op.batch_alter_table("recipient_lists", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("rejected_count")
        batch_op.drop_column("rows_read")
        batch_op.drop_column("failure_reason")
        batch_op.drop_column("state")
