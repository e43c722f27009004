"""Rows for database tests, with just enough filled in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.db.models import Campaign, CampaignRun, PhoneNumber, Recipient, Tenant


def tenant(session: Session, user_id: str = "user-1") -> Tenant:
    row = Tenant(user_id=user_id)
    session.add(row)
    session.flush()
    return row


def campaign(session: Session, owner: Tenant, **fields: Any) -> Campaign:
    values: dict[str, Any] = {
        "name": "Renewals",
        "assistant_id": "asst-1",
        "phone_number_id": "+14155550100",
        "max_concurrency": 5,
        "retry_policy": {},
        "speech_settings": {"style": "neutral"},
    }
    values.update(fields)
    row = Campaign(tenant_id=owner.id, **values)
    session.add(row)
    session.flush()
    return row


def phone_number(session: Session, tenant_id: str, number: str) -> PhoneNumber:
    """The tenant's registered caller number ``number`` (E.164), registered now (as the
    provider had confirmed it) unless it already is; another tenant's fails on the unique
    constraint, as it should."""
    row = session.scalars(
        sa.select(PhoneNumber).where(
            PhoneNumber.tenant_id == tenant_id, PhoneNumber.number == number
        )
    ).one_or_none()
    if row is None:
        row = PhoneNumber(tenant_id=tenant_id, number=number, provider_status="owned")
        session.add(row)
        session.flush()
    return row


def run(session: Session, of: Campaign, number: int = 1) -> CampaignRun:
    row = CampaignRun(campaign_id=of.id, number=number, started_at=datetime.now(UTC))
    session.add(row)
    session.flush()
    return row


def recipient(session: Session, of: Campaign, phone_number: str, **fields: Any) -> Recipient:
    row = Recipient(campaign_id=of.id, phone_number=phone_number, **fields)
    session.add(row)
    session.flush()
    return row
