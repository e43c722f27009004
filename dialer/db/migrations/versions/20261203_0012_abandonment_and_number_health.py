"""abandonment and caller-number health: stream start and abandoned flag of attempts, a
campaign's abandon limit and paused reason, quarantined numbers, and health tallies

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 21:00:00.000000

Campaigns created before get the default limit of 3%; attempts ended before have no
``abandoned`` verdict and count in no tally.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stream_started_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("abandoned", sa.Boolean(), nullable=True))
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("max_abandon_rate", sa.Float(), nullable=False, server_default="0.03")
        )
        batch_op.add_column(sa.Column("paused_reason", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("resumed_at", sa.DateTime(timezone=True)))
        batch_op.create_check_constraint(
            "max_abandon_rate_range", "max_abandon_rate >= 0 AND max_abandon_rate <= 1"
        )
    with op.batch_alter_table("phone_numbers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quarantined_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("quarantine_reason", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("released_at", sa.DateTime(timezone=True)))
    op.create_table(
        "health_tallies",
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dials", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("humans", sa.Integer(), nullable=False),
        sa.Column("abandoned", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", "bucket_start", name=op.f("pk_health_tallies")),
    )


def downgrade() -> None:
    op.drop_table("health_tallies")
    with op.batch_alter_table("phone_numbers", schema=None) as batch_op:
        batch_op.drop_column("released_at")
        batch_op.drop_column("quarantine_reason")
        batch_op.drop_column("quarantined_at")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_constraint("max_abandon_rate_range", type_="check")
        batch_op.drop_column("resumed_at")
        batch_op.drop_column("paused_reason")
        batch_op.drop_column("max_abandon_rate")
    with op.batch_alter_table("call_attempts", schema=None) as batch_op:
        batch_op.drop_column("abandoned")
        batch_op.drop_column("stream_started_at")
