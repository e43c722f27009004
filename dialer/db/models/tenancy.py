"""Tenants and their API keys (stored hashed, never in clear)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from dialer.clock import utc_now
from dialer.db.base import Base
from dialer.db.types import UTCDateTime, new_id


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    #: The ``X-User-ID`` its API keys are presented with.
    user_id: Mapped[str] = mapped_column(sa.String(200), unique=True)
    #: A cap on the calls in flight across all of the tenant's campaigns; None = no cap.
    max_concurrency: Mapped[int | None] = mapped_column(sa.Integer)
    #: A cap on the tenant's call starts per second, on top of its fair share of the
    #: provider account's; None = no cap.
    max_cps: Mapped[float | None] = mapped_column(sa.Float)
    #: Frequency caps on one number across the tenant's campaigns
    #: (:mod:`dialer.policy.frequency`); None = the deployment's default
    #: (``DIALER_CAP_ATTEMPTS_PER_DAY`` ...).
    cap_attempts_per_day: Mapped[int | None] = mapped_column(sa.Integer)
    cap_attempts_per_week: Mapped[int | None] = mapped_column(sa.Integer)
    cap_quiet_days_after_answer: Mapped[int | None] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    #: SHA-256 of the key, hex. Keys are 256 random bits, so a fast hash is enough.
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    #: The first characters of the key, to tell keys apart in listings.
    prefix: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (sa.Index(None, "tenant_id"),)
