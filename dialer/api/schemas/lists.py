"""Recipient list bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from dialer.api.schemas.common import Input, Output
from dialer.api.schemas.recipients import RecipientIn


class RecipientListIn(Input):
    name: str = Field(min_length=1, max_length=200)
    recipients: list[RecipientIn] = Field(default_factory=list, max_length=10_000)


class RecipientListOut(Output):
    id: str
    name: str
    row_count: int
    created_at: datetime


class ListRejectedRow(Output):
    row: int = Field(description="CSV line number (header is line 1) or 0-based JSON index.")
    phone_number: str | None
    reason: str


class RecipientListCreated(RecipientListOut):
    accepted: int
    rejected_count: int
    rejected: list[ListRejectedRow] = Field(
        description="The first rejected rows (at most 1,000); rejected_count has them all."
    )
