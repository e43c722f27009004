"""The caller numbers a tenant has registered: the only numbers its campaigns call from."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from dialer.clock import utc_now
from dialer.db.base import Base
from dialer.db.types import UTCDateTime, new_id


class PhoneNumber(Base):
    __tablename__ = "phone_numbers"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    #: E.164. Unique across tenants: one number, one tenant (the provider account is shared,
    #: so a second tenant on the same number would call as the first).
    number: Mapped[str] = mapped_column(sa.String(20), unique=True)
    name: Mapped[str | None] = mapped_column(sa.String(200))
    #: What the provider said when it was registered: ``owned`` or ``verified`` (caller ID).
    provider_status: Mapped[str] = mapped_column(sa.String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    #: Set when the number's health crossed a threshold (:mod:`dialer.policy.health`): no new
    #: call is placed from it until an operator releases it.
    quarantined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    quarantine_reason: Mapped[str | None] = mapped_column(sa.String(60))
    #: Set by a release: the number's health counts only dials after it.
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Listing: a tenant's numbers in number order (keyset pages).
    __table_args__ = (sa.Index(None, "tenant_id", "number"),)
