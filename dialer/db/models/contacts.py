"""What a tenant's numbers were told and agreed to: contacts made, consent recorded."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from dialer.clock import utc_now
from dialer.db.base import Base
from dialer.db.types import BigId, UTCDateTime


class NumberContact(Base):
    """One call attempt that reached the provider, per tenant and number, whatever the
    campaign: the history the frequency caps read. Written when the attempt is dialed (and
    removed if the provider then refused it: no call existed), ``human_answered_at`` set when
    a person answered. Not tied to the attempt's row: it outlives a deleted campaign."""

    __tablename__ = "number_contacts"

    attempt_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    phone_number: Mapped[str] = mapped_column(sa.String(20))  # E.164
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    human_answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (sa.Index("ix_number_contacts_number", "tenant_id", "phone_number", "at"),)


class ConsentRecord(Base):
    """A number's consent to be called, as the tenant recorded it. Append-only: a newer
    record supersedes an older one for use, and the older stays as evidence."""

    __tablename__ = "consent_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    phone_number: Mapped[str] = mapped_column(sa.String(20))  # E.164
    #: ``express_written``, ``express`` or ``existing_relationship``.
    basis: Mapped[str] = mapped_column(sa.String(30))
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Where it was captured, e.g. ``web-form:signup``.
    source: Mapped[str | None] = mapped_column(sa.String(200))
    #: A reference to the evidence (a form submission id, a recording...).
    evidence: Mapped[str | None] = mapped_column(sa.Text)
    #: The API key that recorded it (its id), when one did.
    created_by: Mapped[str | None] = mapped_column(sa.String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    __table_args__ = (
        sa.Index("ix_consent_records_number", "tenant_id", "phone_number", "captured_at"),
    )
