"""What the database says should hold slots: the source of truth for reconcile.

A call attempt holds slots from when it is queued until it ends. The holders a reconcile
restores are the attempts with a call placed (:func:`live_attempts`), in the keys of their
:class:`SlotScope`; queued ones take their slot again, checked, when their dial task runs.

The database cannot say the opposite, that a holder should *not* hold a slot, just because
its attempt is missing: the dispatcher takes the slot before the attempt's row commits, so a
reconcile may observe a holder whose row it cannot see yet. Only an attempt whose row says
``ended`` has given its slots up (:func:`ended_attempts`); any other holder is left to its lease.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.concurrency.keys import SlotScope
from dialer.db.models import CallAttempt, Campaign
from dialer.policy.attempt_state import AttemptStatus

#: Attempt ids per ``IN (...)`` list: far below every backend's limit on bound parameters.
ENDED_CHUNK = 500


#: Attempts whose slots a reconcile restores: a call was placed (or is being placed) for them.
PLACED = (AttemptStatus.DIALING, AttemptStatus.RINGING, AttemptStatus.IN_PROGRESS)


@dataclass(frozen=True, slots=True)
class SlotTruth:
    """What the database says about the attempts a reconcile looks at.

    ``live``: the attempts with a call placed, each with the scope whose slots it should hold.
    ``ended``: attempt ids, among those observed holding slots, whose attempt has ended (their
    slots may go). An observed attempt in neither is *unknown*: its row is not committed yet
    (or never will be), so reconcile leaves it to its lease.
    """

    live: Mapping[int, SlotScope] = field(default_factory=dict)
    ended: AbstractSet[int] = frozenset()


def live_attempts(session: Session) -> dict[int, SlotScope]:
    """Attempt id -> scope of the attempts with a call placed, read in one query.

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
    return {
        attempt_id: SlotScope(campaign_id, tenant_id, from_number)
        for attempt_id, campaign_id, tenant_id, from_number in rows
    }


def ended_attempts(session: Session, attempt_ids: Iterable[int]) -> set[int]:
    """The attempts among ``attempt_ids`` whose row exists and says ``ended``.

    One lookup by primary key per :data:`ENDED_CHUNK` ids. Ids whose row is missing (not
    committed yet, rolled back, deleted) are not in the answer.
    """
    ids = sorted(set(attempt_ids))
    ended: set[int] = set()
    for start in range(0, len(ids), ENDED_CHUNK):
        chunk = ids[start : start + ENDED_CHUNK]
        ended.update(
            session.scalars(
                sa.select(CallAttempt.id).where(
                    CallAttempt.id.in_(chunk), CallAttempt.status == AttemptStatus.ENDED
                )
            )
        )
    return ended


def read_truth(
    session: Session, observed: AbstractSet[int], *, after_dials: bool = False
) -> SlotTruth:
    """The :class:`SlotTruth` for a reconcile that observed the attempts ``observed`` holding
    slots (see :meth:`dialer.concurrency.slots.CallSlots.reconcile`).

    ``after_dials`` (a rebuild after the store lost its holders, in a transaction of its own):
    first wait for the dials under way. A dial task renews its slot while it holds its queued
    attempt's row lock, and commits the attempt as dialing afterwards; a renewal from before
    the loss must be seen as the call it becomes, or the rebuilt store would let another call
    take its place. Locking the queued rows (``FOR SHARE``) waits for those commits, and the
    read that follows, a statement later under READ COMMITTED, sees them. (On SQLite, the
    embedded default, the semaphore lives in process and never loses its holders alone.)
    """
    if after_dials and session.get_bind().dialect.name == "postgresql":
        session.execute(_QUEUED_SHARED).all()
    return SlotTruth(live=live_attempts(session), ended=ended_attempts(session, observed))


_QUEUED_SHARED = (
    sa.select(CallAttempt.id)
    .where(CallAttempt.status == AttemptStatus.QUEUED)
    .with_for_update(read=True)
)
