"""Recipient lists (reusable) and the recipients of a campaign."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from dialer.clock import utc_now
from dialer.db.base import Base
from dialer.db.types import BigId, JsonDoc, UTCDateTime, enum_column, new_id
from dialer.policy.attempt_state import CLAIMABLE_RECIPIENT, Outcome, RecipientStatus


class ListState(StrEnum):
    """Where a list's import is: rows go in while ``importing``; only a ``ready`` list can be
    attached to a campaign; a ``failed`` one says why in ``failure_reason``."""

    IMPORTING = "importing"
    READY = "ready"
    FAILED = "failed"


class RecipientList(Base):
    __tablename__ = "recipient_lists"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(200))
    #: Entries in the list (rows accepted so far).
    row_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    state: Mapped[str] = mapped_column(sa.String(16), default=ListState.READY.value)
    failure_reason: Mapped[str | None] = mapped_column(sa.String(200))
    #: Data rows read so far (accepted plus rejected; blank lines are not rows).
    rows_read: Mapped[int] = mapped_column(sa.Integer, default=0)
    rejected_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: The importing process's last sign of life (each chunk it commits); an ``importing``
    #: list whose heartbeat is stale has lost its import.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (sa.Index(None, "tenant_id", "created_at"),)


class RecipientListRejection(Base):
    """A row an import did not take, and why."""

    __tablename__ = "recipient_list_rejections"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    list_id: Mapped[str] = mapped_column(sa.ForeignKey("recipient_lists.id", ondelete="CASCADE"))
    #: CSV line number (the header is line 1) or 0-based JSON index.
    row: Mapped[int] = mapped_column(sa.Integer)
    #: The number as given (cut to the column's length); None when the row was unreadable.
    phone_number: Mapped[str | None] = mapped_column(sa.String(64))
    reason: Mapped[str] = mapped_column(sa.String(200))

    __table_args__ = (sa.Index(None, "list_id", "id"),)


class RecipientListEntry(Base):
    __tablename__ = "recipient_list_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    list_id: Mapped[str] = mapped_column(sa.ForeignKey("recipient_lists.id", ondelete="CASCADE"))
    phone_number: Mapped[str] = mapped_column(sa.String(20))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonDoc, default=dict)
    assistant_overrides: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    region: Mapped[str | None] = mapped_column(sa.String(8))

    __table_args__ = (sa.UniqueConstraint("list_id", "phone_number"),)


_claimable = ", ".join(f"'{s.value}'" for s in sorted(CLAIMABLE_RECIPIENT))


class Recipient(Base):
    __tablename__ = "recipients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    #: The dial-plan entry that calls this recipient; None = the campaign's own number.
    caller_number_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("caller_numbers.id", ondelete="SET NULL")
    )
    phone_number: Mapped[str] = mapped_column(sa.String(20))  # E.164
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonDoc, default=dict)
    assistant_overrides: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    #: An IANA zone: narrows the zones the number maps to (checked with them when it is not
    #: one of them; alone only for a number of no known zone).
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    #: An ISO 3166 country or subdivision (``US-FL``): narrows the number's place the same way.
    region: Mapped[str | None] = mapped_column(sa.String(8))
    status: Mapped[RecipientStatus] = mapped_column(
        enum_column(RecipientStatus, "recipient_status"), default=RecipientStatus.PENDING
    )
    #: Why the recipient is where it is: for terminal states (e.g. ``unknown-time-zone``), and
    #: for one waiting for a window the screen deferred it to (``outside-legal-hours``).
    reason: Mapped[str | None] = mapped_column(sa.String(100))
    #: Attempts ever made; the next attempt's number is this plus one.
    attempt_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: Attempts made in the current run (what the retry policy counts).
    run_attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: When it is due. Pending recipients are due from when they were added.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    last_outcome: Mapped[Outcome | None] = mapped_column(enum_column(Outcome, "recipient_outcome"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)

    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "phone_number"),
        # "Due recipients of a campaign": a range scan of this partial index, oldest due first.
        sa.Index(
            "ix_recipients_due",
            "campaign_id",
            "next_attempt_at",
            "id",
            postgresql_where=sa.text(f"status IN ({_claimable})"),
            sqlite_where=sa.text(f"status IN ({_claimable})"),
        ),
        # Listing a campaign's recipients by status (API pages, counts reconcile).
        sa.Index(None, "campaign_id", "status", "id"),
        # Why the campaign's waiting recipients wait (window, retry) and until when: counted
        # from this index alone (dialer.services.campaign_waits).
        sa.Index(
            "ix_recipients_waiting",
            "campaign_id",
            "status",
            "reason",
            "next_attempt_at",
            postgresql_where=sa.text(f"status IN ({_claimable})"),
            sqlite_where=sa.text(f"status IN ({_claimable})"),
        ),
    )
