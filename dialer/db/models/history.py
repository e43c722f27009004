"""The history of every change to a campaign: append-only, who and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from dialer.clock import utc_now
from dialer.db.base import Base
from dialer.db.types import BigId, JsonDoc, UTCDateTime


class CampaignHistory(Base):
    """One change to a campaign: its kind, who made it, and what changed.

    No foreign key to the campaign: the record of a campaign outlives it (its deletion is
    the last entry). Rows are only ever inserted; the tenant scopes every read.
    """

    __tablename__ = "campaign_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    campaign_id: Mapped[str] = mapped_column(sa.String(36))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    #: ``api-key`` (with :attr:`api_key_id` and :attr:`api_key_prefix`), ``operator`` (the
    #: ``dialer`` command line) or ``system`` (the dialer itself: a window closing...).
    actor: Mapped[str] = mapped_column(sa.String(20))
    api_key_id: Mapped[str | None] = mapped_column(sa.String(36))
    api_key_prefix: Mapped[str | None] = mapped_column(sa.String(16))
    #: ``created``, ``updated``, ``action``, ``recipients_added``, ``deleted``.
    kind: Mapped[str] = mapped_column(sa.String(30))
    #: What changed: ``{"changes": {field: {"old": ..., "new": ...}}}``, ``{"action": ...}``...
    details: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)

    # A campaign's history in order (keyset pages either way).
    __table_args__ = (sa.Index(None, "campaign_id", "id"),)
