"""The tenant's do-not-call list."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.db.bulk import insert_ignoring_conflicts
from dialer.db.models import Suppression
from dialer.errors import NotFound
from dialer.phone import to_e164


def add(
    session: Session, tenant_id: str, raw_number: str, reason: str | None, *, now: datetime
) -> Suppression:
    """Add a number (idempotent: adding it again keeps the first entry)."""
    number = to_e164(raw_number, field="phone_number")
    session.execute(
        insert_ignoring_conflicts(session, Suppression.__table__),  # type: ignore[arg-type]
        [{"tenant_id": tenant_id, "phone_number": number, "reason": reason, "created_at": now}],
    )
    return session.scalars(
        sa.select(Suppression).where(
            Suppression.tenant_id == tenant_id, Suppression.phone_number == number
        )
    ).one()


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
