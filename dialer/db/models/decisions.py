"""The per-recipient timeline: every decision that changed where a recipient stands."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from dialer.db.base import Base
from dialer.db.types import BigId, JsonDoc, UTCDateTime


class RecipientDecision(Base):
    """One decision about one recipient, appended, never changed.

    ``kind`` is what was decided (``deferred``, ``dialed``, ``outcome``, or the terminal
    status reached: ``skipped``, ``suppressed``, ``canceled``, ``done``, ``exhausted``...),
    ``reason`` the rule's reason string as the screen or the retry policy gave it, ``until``
    when the recipient is due again (a deferral, a retry), and ``facts`` what the decision
    read (the zones checked and their local times at a dial, the outcome of an attempt...).
    A row is written only when something changed: a deferral the recipient already carries
    (same reason, same due time) writes nothing, so storage follows decisions, not ticks.
    """

    __tablename__ = "recipient_decisions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    recipient_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("recipients.id", ondelete="CASCADE")
    )
    campaign_id: Mapped[str] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(sa.String(20))
    reason: Mapped[str | None] = mapped_column(sa.String(100))
    until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: No foreign key: an attempt a claim dropped in the same transaction never existed.
    attempt_id: Mapped[int | None] = mapped_column(BigId)
    facts: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)

    __table_args__ = (
        # A recipient's timeline, oldest first, a page at a time.
        sa.Index(None, "recipient_id", "id"),
        # A campaign's decisions, for its deletion's cascade.
        sa.Index(None, "campaign_id"),
    )
