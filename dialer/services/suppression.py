"""The tenant's do-not-call list: one way onto it, whoever asks (the API, the assistant during
a call, a key pressed on the call)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.calls import states
from dialer.calls.states import OptedOut
from dialer.db.bulk import insert_ignoring_conflicts
from dialer.db.models import CallAttempt, Campaign, Suppression
from dialer.errors import NotFound
from dialer.phone import to_e164

#: Where a suppression came from (:attr:`dialer.db.models.Suppression.source`).
SOURCE_API = "api"
#: Added on the host, not through the API (the ``dialer`` command line, the demo).
SOURCE_OPERATOR = "operator"


def call_api_source(attempt_id: int) -> str:
    """The source of an opt-out the assistant asked for during call ``attempt_id``."""
    return f"call-api:{attempt_id}"


def dtmf_source(attempt_id: int) -> str:
    """The source of an opt-out keyed in on call ``attempt_id``."""
    return f"dtmf:{attempt_id}"


@dataclass(frozen=True, slots=True)
class Added:
    """The entry (the first one, when the number was on the list already), and what adding it
    ended in the tenant's campaigns (nothing the second time)."""

    suppression: Suppression
    ended: OptedOut


def add(
    session: Session,
    tenant_id: str,
    raw_number: str,
    reason: str | None,
    *,
    source: str,
    now: datetime,
) -> Added:
    """Put a number on the tenant's do-not-call list, and end, in the same transaction, every
    recipient of it not yet on a call in every campaign of the tenant, with its queued attempts
    (:func:`dialer.calls.states.opt_out`): no call to it starts once this commits.

    Idempotent: adding it again keeps the first entry (its reason and source), and finds
    nothing left to end."""
    number = to_e164(raw_number, field="phone_number")
    session.execute(
        insert_ignoring_conflicts(session, Suppression.__table__),  # type: ignore[arg-type]
        [
            {
                "tenant_id": tenant_id,
                "phone_number": number,
                "reason": reason,
                "source": source,
                "created_at": now,
            }
        ],
    )
    ended = states.opt_out(session, tenant_id, number, now=now)
    row = session.scalars(
        sa.select(Suppression).where(
            Suppression.tenant_id == tenant_id, Suppression.phone_number == number
        )
    ).one()
    return Added(row, ended)


def opt_out_callee(
    session: Session, attempt_id: int, reason: str | None, *, source: str, now: datetime
) -> Added | None:
    """:func:`add` the number call ``attempt_id`` went to, for the tenant whose call it is
    (a provider's webhook names the attempt, not the tenant); None when there is no such
    attempt."""
    row = session.execute(
        sa.select(CallAttempt.to_number, Campaign.tenant_id)
        .join(Campaign, Campaign.id == CallAttempt.campaign_id)
        .where(CallAttempt.id == attempt_id)
    ).one_or_none()
    if row is None:
        return None
    number, tenant_id = row
    return add(session, tenant_id, number, reason, source=source, now=now)


def remove(session: Session, tenant_id: str, raw_number: str) -> None:
    number = to_e164(raw_number, field="phone_number")
    result = session.execute(
        sa.delete(Suppression).where(
            Suppression.tenant_id == tenant_id, Suppression.phone_number == number
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"{number} is not on the do-not-call list")


def page(
    session: Session, tenant_id: str, *, after_id: int | None, limit: int
) -> list[Suppression]:
    stmt = sa.select(Suppression).where(Suppression.tenant_id == tenant_id)
    if after_id is not None:
        stmt = stmt.where(Suppression.id > after_id)
    return list(session.scalars(stmt.order_by(Suppression.id).limit(limit)))
