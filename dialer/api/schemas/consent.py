"""Consent bodies: a recipient's ``consent``, and ``/consent``'s records."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, Field

from dialer.api.schemas.common import DIALABLE, Input, Output
from dialer.services.consent import MAX_EVIDENCE, MAX_SOURCE, ConsentBasis


class ConsentIn(Input):
    """Consent to be called: on what basis, when and where it was captured, and a reference
    to its evidence."""

    basis: ConsentBasis
    captured_at: AwareDatetime = Field(
        description="When it was given; a record is used from this instant on."
    )
    source: str | None = Field(
        default=None, max_length=MAX_SOURCE, description='Where, e.g. "web-form:signup".'
    )
    evidence: str | None = Field(
        default=None,
        max_length=MAX_EVIDENCE,
        description="A reference to the evidence (form submission id, recording...).",
    )


class ConsentRecordIn(ConsentIn):
    """``POST /consent``: one record for one of the tenant's numbers."""

    phone_number: str = Field(min_length=1, max_length=40, json_schema_extra=DIALABLE)


class ConsentOut(Output):
    id: int
    phone_number: str
    basis: str
    captured_at: datetime
    source: str | None
    evidence: str | None
    created_by: str | None
    created_at: datetime
