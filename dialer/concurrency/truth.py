"""What the database says should hold slots: the source of truth for reconcile.

A call attempt holds slots from when it is queued until it ends. The holders a reconcile
restores are the attempts with a call placed (:func:`live_holders`), in the keys of their
:class:`SlotScope`; queued ones take their slot again, checked, when their dial task runs.

The database cannot say the opposite, that a holder should *not* hold a slot, just because
its attempt is missing: the dispatcher takes the slot before the attempt's row commits, so a
reconcile may observe a holder whose row it cannot see yet. Only an attempt whose row says
``ended`` has given its slots up (:func:`ended_holders`); any other holder is left to its lease.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.concurrency.keys import SEMAPHORE_PREFIX, SlotScope, attempt_id_of, holder_id
from dialer.concurrency.semaphore.base import Truth
from dialer.db.models import CallAttempt, Campaign
from dialer.policy.attempt_state import AttemptStatus

#: Attempt ids per ``IN (...)`` list: far below every backend's limit on bound parameters.
ENDED_CHUNK = 500


#: Attempts whose slots a reconcile restores: a call was placed (or is being placed) for them.
PLACED = (AttemptStatus.DIALING, AttemptStatus.RINGING, AttemptStatus.IN_PROGRESS)


def live_holders(session: Session, *, prefix: str = SEMAPHORE_PREFIX) -> dict[str, set[str]]:
    """Key -> holder ids of the attempts with a call placed, read in one query.

    These are restored without a capacity check: the calls exist whatever the semaphore says.
    A queued attempt is not among them: its slot is a reservation that a lapsed lease or a
    Redis restart may have given to another attempt, so its dial task takes it again, checked
    (renew fails, acquire decides), rather than a reconcile forcing it back above the limit.
    """
    rows = session.execute(
        sa.select(
            CallAttempt.id, CallAttempt.campaign_id, Campaign.tenant_id, CallAttempt.from_number
        )
        .join(Campaign, Campaign.id == CallAttempt.campaign_id)
        .where(CallAttempt.status.in_(PLACED))
    )
    truth: dict[str, set[str]] = {}
    for attempt_id, campaign_id, tenant_id, from_number in rows:
        scope = SlotScope(campaign_id, tenant_id, from_number)
        for key in scope.keys(prefix):
            truth.setdefault(key, set()).add(holder_id(attempt_id))
    return truth


def ended_holders(session: Session, holders: Iterable[str]) -> set[str]:
    """The holders among ``holders`` whose attempt row exists and says ``ended``.

    One lookup by primary key per :data:`ENDED_CHUNK` ids. Holders whose row is missing (not
    committed yet, rolled back, deleted) and ids that name no attempt are not in the answer.
    """
    ids = sorted({i for i in map(attempt_id_of, holders) if i is not None})
    ended: set[str] = set()
    for start in range(0, len(ids), ENDED_CHUNK):
        chunk = ids[start : start + ENDED_CHUNK]
        rows = session.scalars(
            sa.select(CallAttempt.id).where(
                CallAttempt.id.in_(chunk), CallAttempt.status == AttemptStatus.ENDED
            )
        )
        ended.update(holder_id(attempt_id) for attempt_id in rows)
    return ended


def database_truth(
    session: Session, observed: AbstractSet[str], *, prefix: str = SEMAPHORE_PREFIX
) -> Truth:
    """The :class:`Truth` for a reconcile that observed the holders ``observed``.

    The read for :func:`dialer.concurrency.semaphore.base.reconcile_from`: the live holders
    per key, and which of the observed holders have ended.
    """
    return Truth(live=live_holders(session, prefix=prefix), ended=ended_holders(session, observed))
