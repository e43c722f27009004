"""The launch preview's estimate against real runs of campaigns on the simulator (driven
clock): made before the start, it is within a fifth of the time the run actually took."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.calls import counters
from dialer.db.models import CallAttempt, Campaign, Recipient, RecipientDecision
from dialer.policy.attempt_state import CLAIMABLE_RECIPIENT, RecipientStatus
from dialer.policy.campaign_state import CampaignAction, CampaignStatus
from dialer.policy.estimate import CallProfile
from dialer.services import preview
from tests.flow.harness import Harness, numbers, profile

#: What the simulator's profile below makes of a call, dial to end: answered, 1 s to ring,
#: 5 s ringing, 30 s talking; unanswered, 1 s to ring and the 30 s ring timeout.
SIMULATED = CallProfile(answered_s=36.0, unanswered_s=31.0, answer_rate=0.5)
RETRY = {"max_attempts": 3, "backoff": {"kind": "fixed", "delay": "120s"}, "jitter": 0}


def _preview(h: Harness, campaign_id: str, cps: float) -> preview.Preview:
    with h.session() as session:
        tenant_id = session.get_one(Campaign, campaign_id).tenant_id
        return preview.preview(
            session, tenant_id, campaign_id, h.clock.now, account_cps=cps, defaults=SIMULATED
        )


def _run(h: Harness, campaign_id: str) -> datetime:
    """Run the campaign to its end, jumping the clock over idle spans (nothing on a call,
    nothing queued: every recipient left waits for a window or a retry); returns when its
    last call ended."""
    for _ in range(20_000):
        h.step(1.0)
        if h.status(campaign_id) is CampaignStatus.COMPLETED:
            break
        if not h.queue.dials and _idle(h, campaign_id):
            with h.session() as session:
                due = session.scalar(
                    sa.select(sa.func.min(Recipient.next_attempt_at)).where(
                        Recipient.campaign_id == campaign_id,
                        Recipient.status.in_(sorted(CLAIMABLE_RECIPIENT)),
                    )
                )
            if due is not None and due > h.clock.now + timedelta(seconds=2):
                h.clock.now = due - timedelta(seconds=1)
    else:
        raise AssertionError(f"campaign did not complete: {h.counts(campaign_id)}")
    with h.session() as session:
        last = session.scalar(
            sa.select(sa.func.max(CallAttempt.ended_at)).where(
                CallAttempt.campaign_id == campaign_id
            )
        )
    assert last is not None
    return last


def _idle(h: Harness, campaign_id: str) -> bool:
    counts = h.counts(campaign_id)
    return all(
        counts[counters.recipient_key(s)] == 0
        for s in (RecipientStatus.QUEUED, RecipientStatus.IN_FLIGHT)
    )


@pytest.mark.parametrize(
    ("recipients", "concurrency", "cps"),
    [(60, 4, 100.0), (40, 8, 0.25)],
    ids=["slots", "pace"],
)
def test_the_estimate_is_within_a_fifth_of_a_simulated_run(
    engine: Engine, recipients: int, concurrency: int, cps: float
) -> None:
    h = Harness(engine, sim=profile(human=0.5, no_answer=0.5), cps=cps)
    cid = h.campaign(numbers(recipients), max_concurrency=concurrency, retry_policy=RETRY)
    before = _preview(h, cid, cps)
    assert before.callable_now == recipients
    assert before.completes_at is not None
    start = h.clock.now
    h.act(cid, CampaignAction.START)
    ended = _run(h, cid)
    estimated = (before.completes_at - start).total_seconds()
    actual = (ended - start).total_seconds()
    assert abs(estimated - actual) <= 0.2 * actual, (estimated, actual)


def test_the_estimate_honours_legal_hours_closing_and_opening(engine: Engine) -> None:
    """Started 25 minutes before 21:00 in New York with about 40 minutes of calls: the rest
    waits for 08:00, and the estimate says so."""
    h = Harness(engine, sim=profile(human=1.0))
    h.clock.now = datetime.fromisoformat("2026-11-24T01:35:00+00:00")  # 20:35 in New York
    cid = h.campaign(numbers(60), max_concurrency=1, retry_policy=RETRY)
    before = _preview(h, cid, 100.0)
    assert before.completes_at is not None
    start = h.clock.now
    h.act(cid, CampaignAction.START)
    ended = _run(h, cid)
    assert ended > datetime.fromisoformat("2026-11-24T13:00:00+00:00")  # after 08:00 local
    estimated = (before.completes_at - start).total_seconds()
    actual = (ended - start).total_seconds()
    assert abs(estimated - actual) <= 0.2 * actual, (estimated, actual)
    # Deferred by legal hours once, each recipient left at 21:00: one row each, not per tick.
    with h.session() as session:
        deferred = session.scalars(
            sa.select(RecipientDecision.recipient_id).where(
                RecipientDecision.campaign_id == cid, RecipientDecision.kind == "deferred"
            )
        ).all()
    assert deferred
    assert len(deferred) == len(set(deferred))
