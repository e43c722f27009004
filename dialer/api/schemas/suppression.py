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
    created_at: datetime
