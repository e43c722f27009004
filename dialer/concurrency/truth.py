"""What the database says should hold slots: the source of truth for reconcile.

A call attempt holds slots from when it is queued until it ends, so the live holders are the
attempts whose status is not ``ended``, in the keys of their :class:`SlotScope`.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.concurrency.keys import SEMAPHORE_PREFIX, SlotScope, holder_id
from dialer.db.models import CallAttempt, Campaign
from dialer.policy.attempt_state import AttemptStatus


def live_holders(session: Session, *, prefix: str = SEMAPHORE_PREFIX) -> dict[str, set[str]]:
    """Key -> holder ids of the attempts in flight, read in one query."""
    rows = session.execute(
        sa.select(
            CallAttempt.id, CallAttempt.campaign_id, Campaign.tenant_id, CallAttempt.from_number
        )
        .join(Campaign, Campaign.id == CallAttempt.campaign_id)
        .where(CallAttempt.status != AttemptStatus.ENDED)
    )
    truth: dict[str, set[str]] = {}
    for attempt_id, campaign_id, tenant_id, from_number in rows:
        scope = SlotScope(campaign_id, tenant_id, from_number)
        for key in scope.keys(prefix):
            truth.setdefault(key, set()).add(holder_id(attempt_id))
    return truth
