"""Live per-campaign counters, kept in the same transaction as the rows they count."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from dialer.db.base import Base


class CampaignCounter(Base):
    """One shard of a named count of a campaign: ``recipients.<status>``, ``attempts.<outcome>``.

    The rows are created with the campaign (a counter added later: by the first transaction
    that counts on it), so a transition is a plain ``UPDATE ... SET value = value + :delta``
    in the transaction that moves the counted row:
    the count commits or rolls back with it, and never drifts under a crash. A count is the
    sum of its shards; each transaction writes one shard, so concurrent transitions of one
    campaign rarely wait on the same row.
    """

    __tablename__ = "campaign_counters"

    campaign_id: Mapped[str] = mapped_column(
        sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    shard: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, default=0)
    value: Mapped[int] = mapped_column(sa.BigInteger, default=0)
