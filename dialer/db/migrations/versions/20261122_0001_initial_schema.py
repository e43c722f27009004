"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 21:52:38.021810
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("max_concurrency", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("user_id", name=op.f("uq_tenants_user_id")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_api_keys_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "recipient_lists",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_recipient_lists_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipient_lists")),
    )
    with op.batch_alter_table("recipient_lists", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recipient_lists_tenant_id_created_at"),
            ["tenant_id", "created_at"],
            unique=False,
        )

    op.create_table(
        "suppressions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("phone_number", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_suppressions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint(
            "tenant_id", "phone_number", name=op.f("uq_suppressions_tenant_id_phone_number")
        ),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("assistant_id", sa.String(length=200), nullable=False),
        sa.Column("assistant_name", sa.String(length=200), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("phone_number_id", sa.String(length=200), nullable=False),
        sa.Column("caller_id_number", sa.String(length=20), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "running",
                "paused",
                "completed",
                name="campaign_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "ended_reason",
            sa.Enum(
                "campaign.scheduled.ended-by-user",
                "campaign.in-progress.ended-by-user",
                "campaign.ended.success",
                "campaign.ended.window-closed",
                name="campaign_ended_reason",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column("max_concurrency", sa.Integer(), nullable=False),
        sa.Column(
            "retry_policy",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "speech_settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("schedule_start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("schedule_end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "weekly_schedule",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("campaign_context", sa.Text(), nullable=True),
        sa.Column("opening_message_template", sa.Text(), nullable=True),
        sa.Column("use_returning_greeting", sa.Boolean(), nullable=False),
        sa.Column("use_short_term_summaries", sa.Boolean(), nullable=False),
        sa.Column("short_term_summaries_limit", sa.Integer(), nullable=True),
        sa.Column("machine_detection_timeout_seconds", sa.Integer(), nullable=True),
        sa.Column("recipient_list_id", sa.String(length=36), nullable=True),
        sa.Column("current_run_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "machine_detection_timeout_seconds IS NULL OR machine_detection_timeout_seconds BETWEEN 3 AND 60",
            name=op.f("ck_campaigns_amd_timeout_range"),
        ),
        sa.CheckConstraint(
            "max_concurrency BETWEEN 1 AND 200", name=op.f("ck_campaigns_max_concurrency_range")
        ),
        sa.CheckConstraint(
            "schedule_end_time IS NULL OR schedule_start_time IS NULL OR schedule_end_time > schedule_start_time",
            name=op.f("ck_campaigns_schedule_order"),
        ),
        sa.CheckConstraint(
            "short_term_summaries_limit IS NULL OR short_term_summaries_limit >= 0",
            name=op.f("ck_campaigns_summaries_limit_nonnegative"),
        ),
        sa.ForeignKeyConstraint(
            ["recipient_list_id"],
            ["recipient_lists.id"],
            name=op.f("fk_campaigns_recipient_list_id_recipient_lists"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_campaigns_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaigns_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_campaigns_tenant_id_created_at_id"),
            ["tenant_id", "created_at", "id"],
            unique=False,
        )

    op.create_table(
        "recipient_list_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("list_id", sa.String(length=36), nullable=False),
        sa.Column("phone_number", sa.String(length=20), nullable=False),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "assistant_overrides",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["recipient_lists.id"],
            name=op.f("fk_recipient_list_entries_list_id_recipient_lists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipient_list_entries")),
        sa.UniqueConstraint(
            "list_id", "phone_number", name=op.f("uq_recipient_list_entries_list_id_phone_number")
        ),
    )
    op.create_table(
        "caller_numbers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("phone_number_id", sa.String(length=200), nullable=False),
        sa.Column("caller_id_number", sa.String(length=20), nullable=True),
        sa.Column("max_concurrency", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_caller_numbers_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caller_numbers")),
        sa.UniqueConstraint(
            "campaign_id",
            "phone_number_id",
            name=op.f("uq_caller_numbers_campaign_id_phone_number_id"),
        ),
    )
    op.create_table(
        "campaign_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "ended_reason",
            sa.Enum(
                "campaign.scheduled.ended-by-user",
                "campaign.in-progress.ended-by-user",
                "campaign.ended.success",
                "campaign.ended.window-closed",
                name="run_ended_reason",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_runs_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_runs")),
        sa.UniqueConstraint(
            "campaign_id", "number", name=op.f("uq_campaign_runs_campaign_id_number")
        ),
    )
    op.create_table(
        "recipients",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("caller_number_id", sa.String(length=36), nullable=True),
        sa.Column("phone_number", sa.String(length=20), nullable=False),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "assistant_overrides",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "queued",
                "in_flight",
                "waiting_retry",
                "done",
                "exhausted",
                "suppressed",
                "skipped",
                "canceled",
                name="recipient_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=100), nullable=True),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("run_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "last_outcome",
            sa.Enum(
                "human",
                "voicemail",
                "busy",
                "no_answer",
                "failed",
                "canceled",
                "unknown",
                name="recipient_outcome",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["caller_number_id"],
            ["caller_numbers.id"],
            name=op.f("fk_recipients_caller_number_id_caller_numbers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_recipients_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipients")),
        sa.UniqueConstraint(
            "campaign_id", "phone_number", name=op.f("uq_recipients_campaign_id_phone_number")
        ),
    )
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recipients_campaign_id_status_id"),
            ["campaign_id", "status", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_recipients_due",
            ["campaign_id", "next_attempt_at", "id"],
            unique=False,
            postgresql_where=sa.text("status IN ('pending', 'waiting_retry')"),
            sqlite_where=sa.text("status IN ('pending', 'waiting_retry')"),
        )

    op.create_table(
        "call_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "recipient_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("attempt_number", sa.Integer(), nullable=False),
        sa.Column("from_number", sa.String(length=20), nullable=True),
        sa.Column("to_number", sa.String(length=20), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=True),
        sa.Column("provider_call_id", sa.String(length=64), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "dialing",
                "ringing",
                "in_progress",
                "ended",
                name="attempt_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "outcome",
            sa.Enum(
                "human",
                "voicemail",
                "busy",
                "no_answer",
                "failed",
                "canceled",
                "unknown",
                name="attempt_outcome",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column("answered_by", sa.String(length=30), nullable=True),
        sa.Column("error_code", sa.String(length=30), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dialed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(status = 'ended') = (outcome IS NOT NULL)",
            name=op.f("ck_call_attempts_outcome_iff_ended"),
        ),
        sa.CheckConstraint(
            "attempt_number >= 1", name=op.f("ck_call_attempts_attempt_number_positive")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_call_attempts_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["recipients.id"],
            name=op.f("fk_call_attempts_recipient_id_recipients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["campaign_runs.id"],
            name=op.f("fk_call_attempts_run_id_campaign_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_attempts")),
        sa.UniqueConstraint("provider_call_id", name=op.f("uq_call_attempts_provider_call_id")),
        sa.UniqueConstraint(
            "recipient_id",
            "attempt_number",
            name=op.f("uq_call_attempts_recipient_id_attempt_number"),
        ),
    )
    with op.batch_alter_table("call_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_call_attempts_campaign_id_id"), ["campaign_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_call_attempts_live",
            ["campaign_id", "status"],
            unique=False,
            postgresql_where=sa.text("status <> 'ended'"),
            sqlite_where=sa.text("status <> 'ended'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("call_attempts", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_call_attempts_live",
            postgresql_where=sa.text("status <> 'ended'"),
            sqlite_where=sa.text("status <> 'ended'"),
        )
        batch_op.drop_index(batch_op.f("ix_call_attempts_campaign_id_id"))

    op.drop_table("call_attempts")
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_recipients_due",
            postgresql_where=sa.text("status IN ('pending', 'waiting_retry')"),
            sqlite_where=sa.text("status IN ('pending', 'waiting_retry')"),
        )
        batch_op.drop_index(batch_op.f("ix_recipients_campaign_id_status_id"))

    op.drop_table("recipients")
    op.drop_table("campaign_runs")
    op.drop_table("caller_numbers")
    op.drop_table("recipient_list_entries")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaigns_tenant_id_created_at_id"))
        batch_op.drop_index(batch_op.f("ix_campaigns_status"))

    op.drop_table("campaigns")
    op.drop_table("suppressions")
    with op.batch_alter_table("recipient_lists", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recipient_lists_tenant_id_created_at"))

    op.drop_table("recipient_lists")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_tenant_id"))

    op.drop_table("api_keys")
    op.drop_table("tenants")
