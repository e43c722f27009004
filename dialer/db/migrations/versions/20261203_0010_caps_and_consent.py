"""frequency caps per number across campaigns, and consent records

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 20:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cap_attempts_per_day", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cap_attempts_per_week", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cap_quiet_days_after_answer", sa.Integer(), nullable=True))
    json_doc = sa.JSON().with_variant(JSONB(), "postgresql")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("frequency_caps", json_doc, nullable=True))
        batch_op.add_column(
            sa.Column("require_consent", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "number_contacts",
        sa.Column("attempt_id", _BIG_ID, autoincrement=False, nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("phone_number", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("human_answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_number_contacts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("attempt_id", name=op.f("pk_number_contacts")),
    )
    with op.batch_alter_table("number_contacts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_number_contacts_number", ["tenant_id", "phone_number", "at"], unique=False
        )
    op.create_table(
        "consent_records",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("phone_number", sa.String(length=20), nullable=False),
        sa.Column("basis", sa.String(length=30), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_consent_records_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_records")),
    )
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consent_records_number", ["tenant_id", "phone_number", "captured_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_records_number")
    op.drop_table("consent_records")
    with op.batch_alter_table("number_contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_number_contacts_number")
    op.drop_table("number_contacts")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("require_consent")
        batch_op.drop_column("frequency_caps")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("cap_quiet_days_after_answer")
        batch_op.drop_column("cap_attempts_per_week")
        batch_op.drop_column("cap_attempts_per_day")
