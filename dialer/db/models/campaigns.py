"""Campaigns, their runs, and their dial plans."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from dialer.clock import utc_now
from dialer.db.base import Base
from dialer.db.types import JsonDoc, UTCDateTime, enum_column, new_id
from dialer.policy.campaign_state import CampaignStatus, EndedReason


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(200))
    assistant_id: Mapped[str] = mapped_column(sa.String(200))
    assistant_name: Mapped[str | None] = mapped_column(sa.String(200))
    channel: Mapped[str] = mapped_column(sa.String(20), default="voice")
    #: The caller number used when the campaign has no dial plan.
    phone_number_id: Mapped[str] = mapped_column(sa.String(200))
    caller_id_number: Mapped[str | None] = mapped_column(sa.String(20))
    status: Mapped[CampaignStatus] = mapped_column(
        enum_column(CampaignStatus, "campaign_status"), default=CampaignStatus.DRAFT
    )
    ended_reason: Mapped[EndedReason | None] = mapped_column(
        enum_column(EndedReason, "campaign_ended_reason")
    )
    max_concurrency: Mapped[int] = mapped_column(sa.Integer)
    #: A :class:`dialer.policy.retry.RetryPolicy` document.
    retry_policy: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    speech_settings: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    schedule_start_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    schedule_end_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: A :class:`dialer.policy.calling_hours.WeeklyScheduleSpec` document, or None for any hour.
    weekly_schedule: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    campaign_context: Mapped[str | None] = mapped_column(sa.Text)
    opening_message_template: Mapped[str | None] = mapped_column(sa.Text)
    #: Said to an answering machine before hanging up; None = hang up at once.
    voicemail_message: Mapped[str | None] = mapped_column(sa.Text)
    use_returning_greeting: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    use_short_term_summaries: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    short_term_summaries_limit: Mapped[int | None] = mapped_column(sa.Integer)
    machine_detection_timeout_seconds: Mapped[int | None] = mapped_column(sa.Integer)
    recipient_list_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("recipient_lists.id", ondelete="SET NULL")
    )
    #: The campaign's own frequency caps, each at most the tenant's:
    #: ``{attempts_per_day, attempts_per_week, quiet_days_after_answer}``, each optional.
    frequency_caps: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    #: Recipients whose number has no consent record end ``skipped`` (``no-consent``).
    require_consent: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, server_default=sa.false()
    )
    #: Highest share of calls answered by a person that may be abandoned (30-day window);
    #: above it a running campaign pauses itself.
    max_abandon_rate: Mapped[float] = mapped_column(sa.Float, default=0.03)
    #: Why the campaign paused itself (``campaign.paused.abandon-rate``...); None for a pause
    #: by the user, cleared on start.
    paused_reason: Mapped[str | None] = mapped_column(sa.String(60))
    #: When the campaign last went to running (a start or a resume): the failure-rate check
    #: looks only at dials placed since.
    resumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The run in progress or last finished; None until the first start.
    current_run_id: Mapped[str | None] = mapped_column(sa.String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)

    __table_args__ = (
        sa.CheckConstraint("max_concurrency BETWEEN 1 AND 200", name="max_concurrency_range"),
        sa.CheckConstraint(
            "machine_detection_timeout_seconds IS NULL"
            " OR machine_detection_timeout_seconds BETWEEN 3 AND 60",
            name="amd_timeout_range",
        ),
        sa.CheckConstraint(
            "max_abandon_rate >= 0 AND max_abandon_rate <= 1", name="max_abandon_rate_range"
        ),
        sa.CheckConstraint(
            "short_term_summaries_limit IS NULL OR short_term_summaries_limit >= 0",
            name="summaries_limit_nonnegative",
        ),
        sa.CheckConstraint(
            "schedule_end_time IS NULL OR schedule_start_time IS NULL"
            " OR schedule_end_time > schedule_start_time",
            name="schedule_order",
        ),
        # Listing: a tenant's campaigns newest first, optionally by status (keyset pages).
        sa.Index(None, "tenant_id", "created_at", "id"),
        # The scheduler's scan: running campaigns only.
        sa.Index(None, "status"),
    )


class CampaignRun(Base):
    """One start-to-end pass over a campaign; starting a completed campaign opens another."""

    __tablename__ = "campaign_runs"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    campaign_id: Mapped[str] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(sa.Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_reason: Mapped[EndedReason | None] = mapped_column(
        enum_column(EndedReason, "run_ended_reason")
    )

    __table_args__ = (sa.UniqueConstraint("campaign_id", "number"),)


class CallerNumber(Base):
    """A dial-plan entry: a caller number of the campaign, with the recipients it calls."""

    __tablename__ = "caller_numbers"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    campaign_id: Mapped[str] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    phone_number_id: Mapped[str] = mapped_column(sa.String(200))
    caller_id_number: Mapped[str | None] = mapped_column(sa.String(20))
    #: Calls in flight allowed on this number; None = only the campaign's limit applies.
    max_concurrency: Mapped[int | None] = mapped_column(sa.Integer)

    __table_args__ = (sa.UniqueConstraint("campaign_id", "phone_number_id"),)
