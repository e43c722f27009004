"""A tenant's caller numbers: registered once the provider confirms the account may call from
them, and the only numbers the tenant's campaigns call from.

A number belongs to one tenant at most: every tenant dials through the same provider
account, so a second tenant registering it would call as the first. Numbers are stored as
E.164; a campaign names one by its id or by its number in any format (:func:`resolve`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from dialer.db.bulk import for_update, is_postgres
from dialer.db.models import CallerNumber, Campaign, PhoneNumber
from dialer.errors import Conflict, NotFound, ValidationError
from dialer.phone import to_e164
from dialer.policy.campaign_state import CampaignStatus
from dialer.telephony.base import CallerIdStatus

log = logging.getLogger(__name__)

#: What a campaign field naming no phone number of the tenant is told.
NOT_REGISTERED = "not a phone number of this tenant; register it first (POST /phone_number)"


def register(
    sessions: sessionmaker[Session],
    tenant_id: str,
    raw_number: str,
    name: str | None,
    *,
    caller_id_status: Callable[[str], CallerIdStatus],
    now: datetime,
) -> PhoneNumber:
    """Register ``raw_number`` (any common format) for the tenant, as E.164.

    :class:`Conflict` when the number is registered already (to this tenant or another);
    :class:`ValidationError` on ``number`` when the provider account neither owns it nor has
    it verified as a caller ID. The provider is asked outside any transaction; a registration
    that loses a race to the same number fails on the unique constraint instead.
    """
    number = to_e164(raw_number, field="number")
    with sessions() as session:
        taken = session.scalars(sa.select(PhoneNumber).where(PhoneNumber.number == number)).first()
    if taken is not None:
        if taken.tenant_id == tenant_id:
            raise Conflict(f"{number} is registered already, as phone number {taken.id}")
        raise Conflict(f"{number} is registered to another tenant (a number has one tenant)")
    status = caller_id_status(number)
    if not status.may_call_from:
        raise ValidationError(
            "number",
            f"the provider account neither owns {number} nor has it verified as a caller ID",
        )
    with sessions() as session, session.begin():
        row = PhoneNumber(
            tenant_id=tenant_id, number=number, name=name, provider_status=status.value,
            created_at=now,
        )  # fmt: skip
        session.add(row)
    return row


def get(session: Session, tenant_id: str, phone_number_id: str) -> PhoneNumber:
    """The tenant's phone number, or :class:`NotFound` (also for another tenant's)."""
    row = session.scalars(
        sa.select(PhoneNumber).where(
            PhoneNumber.id == phone_number_id, PhoneNumber.tenant_id == tenant_id
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"phone number {phone_number_id} not found")
    return row


def page(
    session: Session, tenant_id: str, *, after_number: str | None, limit: int
) -> list[PhoneNumber]:
    """The tenant's numbers in number order, those after ``after_number``."""
    stmt = sa.select(PhoneNumber).where(PhoneNumber.tenant_id == tenant_id)
    if after_number is not None:
        stmt = stmt.where(PhoneNumber.number > after_number)
    return list(session.scalars(stmt.order_by(PhoneNumber.number).limit(limit)))


def release(
    session: Session, tenant_id: str, phone_number_id: str, *, now: datetime
) -> PhoneNumber:
    """Lift the number's quarantine (a no-op for one not quarantined): it is called from
    again, and its health counts only dials after now, so the calls that quarantined it do
    not quarantine it again at once. A campaign paused for want of a healthy number stays
    paused until it is started."""
    row: PhoneNumber | None = session.scalars(
        for_update(
            session,
            sa.select(PhoneNumber).where(
                PhoneNumber.id == phone_number_id, PhoneNumber.tenant_id == tenant_id
            ),
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"phone number {phone_number_id} not found")
    if row.quarantined_at is not None:
        log.info(
            "phone number %s released from quarantine (%s)",
            row.id,
            row.quarantine_reason,
            extra={"tenant_id": tenant_id, "phone_number_id": row.id},
        )
        row.quarantined_at = None
        row.quarantine_reason = None
        row.released_at = now
        session.flush()
    return row


def delete(session: Session, tenant_id: str, phone_number_id: str) -> None:
    """Remove a number, unless a campaign that may still call (not completed) uses it
    (:class:`Conflict`). A completed campaign does not hold it: starting one again checks
    its numbers then (:func:`require_registered`)."""
    row = session.scalars(
        for_update(
            session,
            sa.select(PhoneNumber).where(
                PhoneNumber.id == phone_number_id, PhoneNumber.tenant_id == tenant_id
            ),
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"phone number {phone_number_id} not found")
    number = row.number
    plans = sa.select(CallerNumber.campaign_id).where(
        sa.or_(CallerNumber.phone_number_id == number, CallerNumber.caller_id_number == number)
    )
    users = list(
        session.scalars(
            sa.select(Campaign.id)
            .where(
                Campaign.tenant_id == tenant_id,
                Campaign.status != CampaignStatus.COMPLETED,
                sa.or_(
                    Campaign.phone_number_id == number,
                    Campaign.caller_id_number == number,
                    Campaign.id.in_(plans),
                ),
            )
            .order_by(Campaign.id)
        )
    )
    if users:
        more = f" and {len(users) - 1} more" if len(users) > 1 else ""
        raise Conflict(
            f"{number} is used by campaign {users[0]}{more}, not completed; stop it or give it "
            "another number first"
        )
    session.delete(row)
    session.flush()


def resolve(session: Session, tenant_id: str, value: str, field: str) -> str:
    """The E.164 number of the tenant's phone number that ``value`` names (its id, or its
    number in any format), or :class:`ValidationError` on ``field``. The row is share-locked
    until the transaction ends, so a concurrent delete waits and then sees the campaign."""
    named = [PhoneNumber.id == value]
    with contextlib.suppress(ValidationError):  # not a number: an id, or nothing of ours
        named.append(PhoneNumber.number == to_e164(value, field=field))
    stmt = sa.select(PhoneNumber.number).where(PhoneNumber.tenant_id == tenant_id, sa.or_(*named))
    number: str | None = session.scalars(_shared(session, stmt)).first()
    if number is None:
        raise ValidationError(field, NOT_REGISTERED)
    return number


def require_registered(session: Session, tenant_id: str, numbers: Iterable[str]) -> None:
    """Every one of ``numbers`` (E.164, as stored on a campaign) is registered to the tenant,
    or :class:`Conflict` naming the first that is not (share-locked, as :func:`resolve`)."""
    wanted = sorted(set(numbers))
    stmt = sa.select(PhoneNumber.number).where(
        PhoneNumber.tenant_id == tenant_id, PhoneNumber.number.in_(wanted)
    )
    found = set(session.scalars(_shared(session, stmt)))
    missing = [n for n in wanted if n not in found]
    if missing:
        raise Conflict(
            f"the campaign calls from {missing[0]}, which is not a phone number of this "
            "tenant; register it (POST /phone_number) or give the campaign another number"
        )


def _shared(session: Session, stmt: sa.Select[Any]) -> sa.Select[Any]:
    """A share lock on PostgreSQL (SQLite serialises writers on its own)."""
    return stmt.with_for_update(read=True) if is_postgres(session) else stmt
