"""The do-not-call list, per tenant."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from dialer.clock import utc_now
from dialer.db.base import Base
from dialer.db.types import BigId, UTCDateTime


class Suppression(Base):
    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    phone_number: Mapped[str] = mapped_column(sa.String(20))  # E.164
    reason: Mapped[str | None] = mapped_column(sa.String(200))
    #: Where the entry came from: ``api`` (``POST /suppression``), ``call-api:<call id>`` (the
    #: assistant's ``POST /call/{id}/opt_out``), ``dtmf:<call id>`` (a key pressed on the
    #: call), ``operator`` (the host: the demo); None for entries made before sources were
    #: recorded.
    source: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    __table_args__ = (sa.UniqueConstraint("tenant_id", "phone_number"),)
