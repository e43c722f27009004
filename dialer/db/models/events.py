"""Provider callbacks as received: the dedupe key for ingestion, and an audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from dialer.clock import utc_now
from dialer.db.base import Base
from dialer.db.types import BigId, JsonDoc, UTCDateTime


class CallEvent(Base):
    """One provider callback. A repeat of (call, kind, sequence) is dropped by the constraint.

    Status callbacks carry ``SequenceNumber``; AMD callbacks have none and are stored with
    sequence -1, so only the first verdict of a call is kept; the media stream's callbacks
    (kind ``stream``) likewise, -2 for ``stream-started``, -3 stopped, -4 error.
    """

    __tablename__ = "call_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    attempt_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("call_attempts.id", ondelete="CASCADE")
    )
    provider_call_id: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(10))
    sequence_number: Mapped[int] = mapped_column(sa.Integer)
    call_status: Mapped[str | None] = mapped_column(sa.String(20))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    __table_args__ = (
        sa.UniqueConstraint("provider_call_id", "kind", "sequence_number"),
        sa.Index(None, "attempt_id"),
    )
