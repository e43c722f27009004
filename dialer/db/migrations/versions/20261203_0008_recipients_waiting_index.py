"""recipients waiting to be called, by status, reason and due time (why a campaign waits)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 18:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CLAIMABLE = sa.text("status IN ('pending', 'waiting_retry')")


def upgrade() -> None:
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.create_index(
            "ix_recipients_waiting",
            ["campaign_id", "status", "reason", "next_attempt_at"],
            unique=False,
            postgresql_where=_CLAIMABLE,
            sqlite_where=_CLAIMABLE,
        )


def downgrade() -> None:
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.drop_index("ix_recipients_waiting")
