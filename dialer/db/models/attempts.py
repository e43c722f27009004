"""Call attempts: append-only, one row per dial."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from dialer.clock import utc_now
from dialer.db.base import Base
from dialer.db.types import BigId, UTCDateTime, enum_column
from dialer.policy.attempt_state import AttemptStatus, Outcome


class CallAttempt(Base):
    __tablename__ = "call_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    recipient_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("recipients.id", ondelete="CASCADE")
    )
    campaign_id: Mapped[str] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    run_id: Mapped[str] = mapped_column(sa.ForeignKey("campaign_runs.id", ondelete="CASCADE"))
    #: 1 for the first dial of the recipient, then 2, 3... across runs.
    attempt_number: Mapped[int] = mapped_column(sa.Integer)
    from_number: Mapped[str | None] = mapped_column(sa.String(20))
    to_number: Mapped[str] = mapped_column(sa.String(20))
    provider: Mapped[str | None] = mapped_column(sa.String(20))
    provider_call_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    status: Mapped[AttemptStatus] = mapped_column(
        enum_column(AttemptStatus, "attempt_status"), default=AttemptStatus.QUEUED
    )
    outcome: Mapped[Outcome | None] = mapped_column(enum_column(Outcome, "attempt_outcome"))
    #: What answering-machine detection said (``human``, ``machine_end_beep``...).
    answered_by: Mapped[str | None] = mapped_column(sa.String(30))
    error_code: Mapped[str | None] = mapped_column(sa.String(30))
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    #: When its dial task was handed to the queue (outbox: NULL = committed, not yet sent); a
    #: dial that must wait for its slot or pace records when its next task falls due.
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Times the provider refused with a retryable error (429, 5xx) before any call existed.
    provider_retries: Mapped[int] = mapped_column(sa.Integer, default=0)
    dialed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_s: Mapped[int | None] = mapped_column(sa.Integer)
    #: When the assistant's media stream started (the provider's stream callback); the
    #: earliest report wins.
    stream_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Set when the call ends: a person answered and the stream did not start in time
    #: (:func:`dialer.policy.health.is_abandoned`); None for a call nobody answered.
    abandoned: Mapped[bool | None] = mapped_column(sa.Boolean)

    __table_args__ = (
        # A second row for the same dial of the same recipient is impossible.
        sa.UniqueConstraint("recipient_id", "attempt_number"),
        sa.CheckConstraint("attempt_number >= 1", name="attempt_number_positive"),
        sa.CheckConstraint("(status = 'ended') = (outcome IS NOT NULL)", name="outcome_iff_ended"),
        # Calls in flight: the semaphore's source of truth and the reaper's scan.
        sa.Index(
            "ix_call_attempts_live",
            "campaign_id",
            "status",
            postgresql_where=sa.text("status <> 'ended'"),
            sqlite_where=sa.text("status <> 'ended'"),
        ),
        sa.Index(None, "campaign_id", "id"),
    )
