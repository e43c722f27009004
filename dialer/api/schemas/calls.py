"""Call attempt bodies."""

from __future__ import annotations

from datetime import datetime

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
