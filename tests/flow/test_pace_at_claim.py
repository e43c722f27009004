"""The pace reserved at the claim, through the real dispatch and dial path: dial tasks come at
their own instants and are rarely sent back, and every limit still holds."""

from __future__ import annotations

import itertools
from collections import Counter

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.calls.results import DialResult
from dialer.db.models import CallAttempt, Tenant
from dialer.policy.campaign_state import CampaignAction
from tests.flow.harness import EPOCH, Harness, numbers, profile


def _dialed(h: Harness, campaign_id: str | None = None) -> list[float]:
    """When each placed call of the campaign (every campaign: None) was dialed, in seconds
    from the harness's start, in order."""
    query = sa.select(CallAttempt.dialed_at).where(CallAttempt.provider_call_id.is_not(None))
    if campaign_id is not None:
        query = query.where(CallAttempt.campaign_id == campaign_id)
    with h.session() as session:
        return sorted((at - EPOCH).total_seconds() for at in session.scalars(query) if at)


def test_claimed_dials_come_at_their_instants_and_are_not_sent_back(engine: Engine) -> None:
    """5 calls a second, 10 slots, calls of about 3 s: the dispatch (ticks and refills)
    claims what the pace starts within its horizon; each dial task, run when due, finds its
    start. Taking the pace at the dial sent most tasks back, several times each."""
    h = Harness(engine, cps=5.0, sim=profile(human=0.0, busy=1.0))
    cid = h.campaign(numbers(30), max_concurrency=10, retry_policy={"max_attempts": 1})
    h.act(cid, CampaignAction.START)
    h.run_until_done(cid, seconds=0.1, max_steps=2_000)
    results = Counter(h.dial_results)
    dialed = _dialed(h, cid)
    assert len(dialed) == 30
    assert results[DialResult.PACED] <= 0.1 * len(dialed), results
    gaps = [b - a for a, b in itertools.pairwise(dialed)]
    assert min(gaps) >= 0.2 - 1e-6  # never over 5 a second
    assert h.peak_of(cid) <= 10
    assert h.counts(cid) == h.truth(cid)


def test_a_tenants_cap_holds_when_its_starts_are_reserved(engine: Engine) -> None:
    """Two campaigns of one tenant capped at 2 calls a second, the account at 20: the
    reservations never start the tenant's calls closer than 0.5 s, and the claims wait for the
    cap, not the dials (no task sent back)."""
    h = Harness(engine, cps=20.0, sim=profile(human=0.0, busy=1.0))
    first = h.campaign(numbers(12), max_concurrency=6, retry_policy={"max_attempts": 1})
    second = h.campaign(numbers(12, 3000), max_concurrency=6, retry_policy={"max_attempts": 1})
    with h.session() as session, session.begin():
        session.execute(sa.update(Tenant).values(max_cps=2.0))
    h.act(first, CampaignAction.START)
    h.act(second, CampaignAction.START)
    for _ in range(150):
        h.step(0.1)
    dialed = _dialed(h)
    assert len(dialed) >= 12  # 2 a second for 15 s, less the first calls' setup
    assert min(b - a for a, b in itertools.pairwise(dialed)) >= 0.5 - 1e-6
    assert DialResult.PACED not in h.dial_results
