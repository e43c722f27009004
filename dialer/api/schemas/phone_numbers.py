"""Phone number bodies: the caller numbers a tenant registers."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from dialer.api.schemas.common import Input, Output, checked


class PhoneNumberIn(Input):
    number: str = Field(
        min_length=1,
        max_length=40,
        description="Any common format, e.g. `+1 (212) 555-0100` or `2125550100` (read as "
        "US); stored as E.164.",
        json_schema_extra=checked(
            "a valid, dialable number that the provider's account owns or has verified as a "
            "caller ID, registered to no other tenant"
        ),
    )
    name: str | None = Field(default=None, max_length=200, description="A label.")


class PhoneNumberOut(Output):
    id: str
    number: str = Field(description="E.164.")
    name: str | None
    provider_status: str = Field(
        description="What the provider said at registration: `owned` (the account's number) "
        "or `verified` (a verified caller ID)."
    )
    created_at: datetime
    quarantined_at: datetime | None = Field(
        default=None,
        description="When the number was quarantined: carriers refused too many of its "
        "calls, or too few were answered. No new call is placed from it until released "
        "(`POST /phone_number/{id}/release`).",
    )
    quarantine_reason: str | None = Field(
        default=None,
        description="`number.quarantined.carrier-rejections` or "
        "`number.quarantined.low-answer-rate`; null when not quarantined.",
    )
    released_at: datetime | None = Field(
        default=None,
        description="When an operator last lifted a quarantine: its health counts only dials "
        "placed after it.",
    )
