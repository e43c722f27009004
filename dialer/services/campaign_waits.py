"""Why a running campaign is not calling: its waiting recipients counted from the database,
the slots from the semaphore, and the breakdown from the policy
(:func:`dialer.policy.waits.campaign_waits`).

Cheap whatever the campaign's size: one grouped count over the ``ix_recipients_waiting``
index (claimable recipients only, by status, reason and due time), and one read of the
campaign's attempts not ended (the ``ix_call_attempts_live`` index: no more rows than calls
in flight and claimed, which the slots bound). No recipient row is loaded.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.calls import facts
from dialer.concurrency.slots import CallSlots
from dialer.db.models import CallAttempt, Campaign, Recipient
from dialer.policy.attempt_state import CLAIMABLE_RECIPIENT, AttemptStatus, RecipientStatus
from dialer.policy.waits import (
    CampaignWaits,
    QueuedAttempt,
    Slots,
    SlotSource,
    WaitingGroup,
    campaign_waits,
)

log = logging.getLogger(__name__)


def waits(
    session: Session, campaign: Campaign, now: datetime, slots: CallSlots | None = None
) -> CampaignWaits:
    """The breakdown of ``campaign``'s waiting recipients at ``now``.

    ``slots``: the semaphore's slots (a distributed deployment's Redis); None reads the slots
    in use from the calls the database has in flight (embedded mode, where the semaphore lives
    in the scheduler process). Should the semaphore not answer, the database's count is given,
    and ``slots.source`` says so.
    """
    due = Recipient.next_attempt_at <= now
    grouped = session.execute(
        sa.select(
            Recipient.status,
            Recipient.reason,
            due,
            sa.func.count(),
            sa.func.min(Recipient.next_attempt_at),
        )
        .where(
            Recipient.campaign_id == campaign.id,
            Recipient.status.in_(sorted(CLAIMABLE_RECIPIENT)),
        )
        .group_by(Recipient.status, Recipient.reason, due)
    )
    groups = [
        WaitingGroup(RecipientStatus(status), reason, bool(is_due), int(count), earliest)
        for status, reason, is_due, count, earliest in grouped
    ]
    live = session.execute(
        sa.select(CallAttempt.status, CallAttempt.enqueued_at, CallAttempt.provider_retries).where(
            CallAttempt.campaign_id == campaign.id, CallAttempt.status != AttemptStatus.ENDED
        )
    ).all()
    queued = [
        QueuedAttempt(enqueued_at, retries)
        for status, enqueued_at, retries in live
        if status is AttemptStatus.QUEUED
    ]
    return campaign_waits(
        facts.campaign_facts(campaign),
        groups,
        queued,
        _slots(campaign, slots, in_flight=len(live)),
        now,
    )


def _slots(campaign: Campaign, slots: CallSlots | None, *, in_flight: int) -> Slots:
    if slots is not None:
        try:
            return Slots(campaign.max_concurrency, slots.in_use(campaign.id), SlotSource.SEMAPHORE)
        except Exception as exc:  # the store out of reach: the database's count instead
            log.warning("campaign %s: slots unreadable (%s); counting calls", campaign.id, exc)
    return Slots(campaign.max_concurrency, in_flight, SlotSource.DATABASE)
