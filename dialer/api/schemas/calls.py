"""Call attempt bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from dialer.api.schemas.common import Output


class CallOut(Output):
    id: int
    campaign_id: str
    run_id: str
    recipient_id: int
    attempt_number: int
    to_number: str
    from_number: str | None
    provider: str | None
    provider_call_id: str | None
    status: str
    outcome: str | None
    answered_by: str | None
    error_code: str | None
    error_message: str | None
    queued_at: datetime
    dialed_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    duration_s: int | None


class CallDetailOut(CallOut):
    """One attempt, with every attempt made to the same recipient (oldest first)."""

    history: list[CallOut]


class LiveCallOut(Output):
    """A call in flight: ``id`` names it in ``GET /call/{id}``."""

    id: int
    campaign_id: str
    recipient_id: int
    attempt_number: int
    provider: str | None
    provider_call_id: str | None = Field(
        description="The provider's call id; null until the provider took the call."
    )
    status: str = Field(description="queued | dialing | ringing | in_progress")
    to_number: str
    from_number: str | None
    queued_at: datetime = Field(description="When it was claimed.")
    dialed_at: datetime | None = Field(description="When it was dialed (the call's start).")
    answered_at: datetime | None
