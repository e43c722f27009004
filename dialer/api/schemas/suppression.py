"""Do-not-call list bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from dialer.api.schemas.common import DIALABLE, Input, Output


class SuppressionIn(Input):
    phone_number: str = Field(min_length=1, max_length=40, json_schema_extra=DIALABLE)
    reason: str | None = Field(default=None, max_length=200)


class SuppressionOut(Output):
    phone_number: str
    reason: str | None
    #: ``api``, ``call-api:<call id>``, ``dtmf:<call id>``, ``operator``; null
    #: for entries made before sources were recorded.
    source: str | None
    created_at: datetime


class OptOutIn(Input):
    reason: str | None = Field(default=None, max_length=200)


class OptOutOut(Output):
    """The number's entry on the do-not-call list (the first one, on a repeat), and what the
    opt-out ended: recipients not yet on a call, across the tenant's campaigns, and their
    queued attempts (zero on a repeat)."""

    phone_number: str
    reason: str | None
    source: str | None
    created_at: datetime
    recipients_suppressed: int
    attempts_canceled: int
