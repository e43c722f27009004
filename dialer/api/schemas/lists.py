"""Recipient list bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from dialer.api.schemas.common import Input, Output
from dialer.api.schemas.recipients import RecipientIn


class RecipientListIn(Input):
    name: str = Field(min_length=1, max_length=200)
    recipients: list[RecipientIn] = Field(default_factory=list, max_length=10_000)


class RecipientListOut(Output):
    id: str
    name: str
    state: Literal["importing", "ready", "failed"] = Field(
        description="`importing` while rows go in (in the background), then `ready` (it can be "
        "attached to a campaign) or `failed` (see `failure_reason`; `interrupted` when the "
        "import stopped before the end)."
    )
    failure_reason: str | None
    rows_read: int = Field(description="Data rows read so far (accepted plus rejected).")
    accepted: int = Field(description="Rows taken into the list so far.")
    rejected_count: int = Field(
        description="Rows refused so far; GET /recipient_list/{id}/rejected lists them."
    )
    row_count: int = Field(description="Entries in the list (the same as `accepted`).")
    created_at: datetime
    updated_at: datetime | None = Field(description="When the import last made progress.")


#: The rejected rows' download: CSV, one line per row.
REJECTED_CSV_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The rejected rows so far as CSV (`text/csv`), with the header "
        "`row,phone_number,reason`: `row` is the CSV line number (the header is line 1) or "
        "the 0-based JSON index, `phone_number` the number as given (empty when the row "
        "could not be read), `reason` why it was refused.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}
