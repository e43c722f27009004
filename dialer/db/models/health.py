"""Call health tallies: counts per caller number per hour, and per campaign per day.

Kept as counters moved when a call ends (in the transaction that ends it), so a health check
sums a few buckets (24 hours of a number, 30 days of a campaign) instead of scanning
attempts. See :mod:`dialer.policy.health` for what the counts decide.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from dialer.db.base import Base
from dialer.db.types import UTCDateTime

#: ``scope`` of a caller number's tallies (``key``: its E.164 number), hourly buckets.
NUMBER_SCOPE = "number"
#: ``scope`` of a campaign's tallies (``key``: its id), daily buckets.
CAMPAIGN_SCOPE = "campaign"


class HealthTally(Base):
    __tablename__ = "health_tallies"

    scope: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    #: Calls placed that ended (a number's).
    dials: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: ...answered by anyone, person or machine (a number's).
    answered: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: ...refused by a carrier because of the calling number (a number's).
    rejected: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: Calls answered by a person (a campaign's)...
    humans: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: ...of which abandoned (a campaign's).
    abandoned: Mapped[int] = mapped_column(sa.Integer, default=0)
