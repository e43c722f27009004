"""Consent to be called, per tenant and number: recorded, listed, and the record in use.

Append-only: the API records and lists, never updates or deletes. A newer record (latest
``captured_at``, then latest id) supersedes the older ones for use, and they stay as the
evidence they were. A campaign with ``require_consent`` calls only numbers with a record
captured at or before the call (:mod:`dialer.policy.screen`); :func:`consent_used` names the
record a call relied on, for an audit trail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.db.models import ConsentRecord
from dialer.phone import to_e164

#: Longest ``source`` and ``evidence`` taken.
MAX_SOURCE = 200
MAX_EVIDENCE = 1000


class ConsentBasis(StrEnum):
    """On what ground the number may be called."""

    EXPRESS_WRITTEN = "express_written"
    EXPRESS = "express"
    EXISTING_RELATIONSHIP = "existing_relationship"


@dataclass(frozen=True, slots=True)
class Consent:
    """A consent as given on input (a recipient's, or ``POST /consent``'s)."""

    basis: ConsentBasis
    captured_at: datetime
    source: str | None = None
    evidence: str | None = None


class ConsentLike(Protocol):
    """A consent as an input body carries it (:class:`Consent` is one)."""

    @property
    def basis(self) -> ConsentBasis: ...
    @property
    def captured_at(self) -> datetime: ...
    @property
    def source(self) -> str | None: ...
    @property
    def evidence(self) -> str | None: ...


#: CSV columns that carry a row's consent (taken out of its metadata).
CSV_COLUMNS = ("consent_basis", "consent_captured_at", "consent_source", "consent_evidence")


def from_columns(values: Mapping[str, str]) -> Consent | None:
    """The consent a CSV row's ``consent_*`` columns give (None when they are all empty);
    ``ValueError`` saying which column is wrong."""
    basis, captured, source, evidence = (values.get(c, "").strip() for c in CSV_COLUMNS)
    if not (basis or captured or source or evidence):
        return None
    try:
        parsed_basis = ConsentBasis(basis)
    except ValueError:
        choices = ", ".join(b.value for b in ConsentBasis)
        raise ValueError(f"consent_basis must be one of {choices}, not {basis!r}") from None
    try:
        captured_at = datetime.fromisoformat(captured)
    except ValueError:
        raise ValueError(f"consent_captured_at is not an ISO 8601 time: {captured!r}") from None
    if captured_at.tzinfo is None:
        raise ValueError("consent_captured_at needs a UTC offset (e.g. 2026-01-31T09:00:00Z)")
    if len(source) > MAX_SOURCE:
        raise ValueError(f"consent_source is longer than {MAX_SOURCE} characters")
    if len(evidence) > MAX_EVIDENCE:
        raise ValueError(f"consent_evidence is longer than {MAX_EVIDENCE} characters")
    return Consent(parsed_basis, captured_at, source or None, evidence or None)


def record(
    session: Session,
    tenant_id: str,
    raw_number: str,
    consent: ConsentLike,
    *,
    now: datetime,
    created_by: str | None = None,
) -> ConsentRecord:
    """Store one consent record for the tenant's number (normalised to E.164). One captured
    later than ``now`` is kept, and used from its ``captured_at`` on."""
    number = to_e164(raw_number, field="phone_number")
    row = _row(tenant_id, number, consent, now, created_by)
    session.add(row)
    session.flush()
    return row


def record_many(
    session: Session,
    tenant_id: str,
    given: Sequence[tuple[str, ConsentLike]],
    *,
    now: datetime,
    created_by: str | None = None,
) -> int:
    """Store the consents of a batch of recipients ((E.164 number, consent) pairs), in one
    INSERT; how many."""
    if given:
        rows = [
            {
                "tenant_id": tenant_id,
                "phone_number": number,
                "basis": ConsentBasis(consent.basis).value,
                "captured_at": consent.captured_at,
                "source": consent.source,
                "evidence": consent.evidence,
                "created_by": created_by,
                "created_at": now,
            }
            for number, consent in given
        ]
        session.execute(sa.insert(ConsentRecord), rows)
    return len(given)


def page(
    session: Session,
    tenant_id: str,
    raw_number: str | None,
    *,
    after_id: int | None,
    limit: int,
) -> list[ConsentRecord]:
    """The tenant's records, oldest first (of one number, normalised, when given)."""
    stmt = sa.select(ConsentRecord).where(ConsentRecord.tenant_id == tenant_id)
    if raw_number is not None:
        number = to_e164(raw_number, field="phone_number")
        stmt = stmt.where(ConsentRecord.phone_number == number)
    if after_id is not None:
        stmt = stmt.where(ConsentRecord.id > after_id)
    return list(session.scalars(stmt.order_by(ConsentRecord.id).limit(limit)))


def consent_used(
    session: Session, tenant_id: str, number: str, now: datetime
) -> ConsentRecord | None:
    """The record a call to ``number`` (E.164) at ``now`` relies on: the latest captured at or
    before ``now``; None when it has none."""
    return session.scalars(
        sa.select(ConsentRecord)
        .where(
            ConsentRecord.tenant_id == tenant_id,
            ConsentRecord.phone_number == number,
            ConsentRecord.captured_at <= now,
        )
        .order_by(ConsentRecord.captured_at.desc(), ConsentRecord.id.desc())
        .limit(1)
    ).one_or_none()


def _row(
    tenant_id: str, number: str, consent: ConsentLike, now: datetime, created_by: str | None
) -> ConsentRecord:
    return ConsentRecord(
        tenant_id=tenant_id,
        phone_number=number,
        basis=ConsentBasis(consent.basis).value,
        captured_at=consent.captured_at,
        source=consent.source,
        evidence=consent.evidence,
        created_by=created_by,
        created_at=now,
    )
