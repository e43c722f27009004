"""Reading recipients' timelines (written by :mod:`dialer.calls.timeline`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.db.models import Recipient, RecipientDecision
from dialer.errors import NotFound
from dialer.services import campaigns


@dataclass(frozen=True, slots=True)
class Decision:
    """One row of a recipient's timeline."""

    id: int
    at: datetime
    kind: str
    reason: str | None
    until: datetime | None
    attempt_id: int | None
    facts: dict[str, Any]


_COLUMNS = (
    RecipientDecision.id,
    RecipientDecision.at,
    RecipientDecision.kind,
    RecipientDecision.reason,
    RecipientDecision.until,
    RecipientDecision.attempt_id,
    RecipientDecision.facts,
)


def page(
    session: Session,
    tenant_id: str,
    campaign_id: str,
    recipient_id: int,
    *,
    after: int = 0,
    limit: int = 50,
) -> list[Decision]:
    """The recipient's decisions after id ``after``, oldest first, at most ``limit``;
    :class:`NotFound` for a campaign or recipient that is not the tenant's."""
    campaigns.get(session, tenant_id, campaign_id)
    found = session.scalar(
        sa.select(Recipient.id).where(
            Recipient.id == recipient_id, Recipient.campaign_id == campaign_id
        )
    )
    if found is None:
        raise NotFound(f"recipient {recipient_id} not found in campaign {campaign_id}")
    rows = session.execute(
        sa.select(*_COLUMNS)
        .where(RecipientDecision.recipient_id == recipient_id, RecipientDecision.id > after)
        .order_by(RecipientDecision.id)
        .limit(limit)
    )
    return [Decision(*row) for row in rows]


def of_recipients(session: Session, recipient_ids: Sequence[int]) -> dict[int, list[Decision]]:
    """The whole timeline of each of ``recipient_ids``, in one query (a page of an export)."""
    timelines: dict[int, list[Decision]] = {}
    if not recipient_ids:
        return timelines
    rows = session.execute(
        sa.select(RecipientDecision.recipient_id, *_COLUMNS)
        .where(RecipientDecision.recipient_id.in_(sorted(set(recipient_ids))))
        .order_by(RecipientDecision.recipient_id, RecipientDecision.id)
    )
    for recipient_id, *values in rows:
        timelines.setdefault(recipient_id, []).append(Decision(*values))
    return timelines
