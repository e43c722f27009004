"""Summaries of calls, stored by the assistant, read back on later calls to the same number."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from dialer.clock import utc_now
from dialer.db.base import Base
from dialer.db.types import BigId, UTCDateTime


class CallSummary(Base):
    __tablename__ = "call_summaries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    attempt_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("call_attempts.id", ondelete="CASCADE"), unique=True
    )
    phone_number: Mapped[str] = mapped_column(sa.String(20))
    summary: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    __table_args__ = (
        # "The last N summaries of this number for this tenant", newest first.
        sa.Index(None, "tenant_id", "phone_number", "created_at"),
    )
