"""Two campaigns of one tenant calling the same numbers, on the simulator: the frequency caps
hold across both, and a number opted out during a call in one is suppressed in the other at
once, with no call to it after the opt-out."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.api.app import create_app
from dialer.db.models import CallAttempt, Recipient
from dialer.policy.attempt_state import AttemptStatus, RecipientStatus
from dialer.policy.campaign_state import CampaignAction, CampaignStatus
from dialer.services import tenant_limits
from dialer.settings import Settings
from tests.api.conftest import headers_for
from tests.flow.harness import Harness, numbers, profile

SHARED = numbers(6)
#: Every call busy, retried a minute later up to 4 times: without the caps each number would
#: be called 8 times within minutes by the two campaigns together.
RETRY = {"max_attempts": 4, "backoff": {"kind": "fixed", "delay": "60s"}, "jitter": 0}
PER_DAY = 2
PER_WEEK = 3


def _dials(h: Harness) -> dict[str, list[datetime]]:
    """When each number was dialed, across the tenant's campaigns."""
    with h.session() as session:
        rows = session.execute(
            sa.select(CallAttempt.to_number, CallAttempt.dialed_at).where(
                CallAttempt.dialed_at.is_not(None)
            )
        ).all()
    out: dict[str, list[datetime]] = defaultdict(list)
    for number, at in rows:
        out[number].append(at)
    return {n: sorted(ats) for n, ats in out.items()}


def _most_in(times: list[datetime], span: timedelta) -> int:
    return max(sum(1 for t in times if start <= t < start + span) for start in times)


def test_caps_hold_across_two_campaigns_sharing_numbers(engine: Engine) -> None:
    h = Harness(engine, sim=profile(human=0.0, busy=1.0))
    with h.session() as session, session.begin():
        tenant_limits.set_limits(
            session,
            "tenant",
            create=True,
            now=h.clock.now,
            attempts_per_day=PER_DAY,
            attempts_per_week=PER_WEEK,
        )
    first = h.campaign(SHARED, max_concurrency=4, retry_policy=RETRY)
    second = h.campaign(SHARED, max_concurrency=4, retry_policy=RETRY)
    h.act(first, CampaignAction.START)
    h.act(second, CampaignAction.START)
    # Up to five weeks, an hour at a time once the first calls are made: 8 calls at 3 a week
    # take three weeks.
    for _ in range(600):
        h.step(1.0)
    for _ in range(35 * 24):
        h.step(3600.0)
        if all(h.status(c) is CampaignStatus.COMPLETED for c in (first, second)):
            break

    dials = _dials(h)
    assert set(dials) == set(SHARED)
    for number, times in dials.items():
        assert _most_in(times, timedelta(hours=24)) <= PER_DAY, number
        assert _most_in(times, timedelta(days=7)) <= PER_WEEK, number
    # The caps slowed the retries, never ended them: every recipient made all of its attempts.
    assert all(len(times) == 2 * RETRY["max_attempts"] for times in dials.values())
    for campaign_id in (first, second):
        assert h.status(campaign_id) is CampaignStatus.COMPLETED
        assert h.counts(campaign_id) == h.truth(campaign_id)


def test_an_opt_out_during_a_call_suppresses_the_number_in_the_other_campaign_at_once(
    engine: Engine,
) -> None:
    h = Harness(engine, sim=profile(human=1.0))
    app = create_app(
        Settings(database_url=str(engine.url)),
        engine=engine,
        clock=h.clock,
        runtime_factory=lambda: h.runtime,
    )
    x, y = SHARED[:2]
    calling = h.campaign([x, y], max_concurrency=2)
    other = h.campaign([x, y], max_concurrency=1)
    h.act(calling, CampaignAction.START)
    call_id = None
    for _ in range(30):  # until the call to x is answered and talking (30 s)
        h.step()
        with h.session() as session:
            call_id = session.scalars(
                sa.select(CallAttempt.id).where(
                    CallAttempt.campaign_id == calling,
                    CallAttempt.to_number == x,
                    CallAttempt.status == AttemptStatus.IN_PROGRESS,
                )
            ).one_or_none()
        if call_id is not None:
            break
    assert call_id is not None

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.post(
            f"/call/{call_id}/opt_out",
            json={"reason": "asked on the call"},
            headers=headers_for(engine, "tenant"),
        )
    assert answer.status_code == 200, answer.text
    with h.session() as session:
        ended = session.scalars(
            sa.select(Recipient).where(Recipient.campaign_id == other, Recipient.phone_number == x)
        ).one()
    assert (ended.status, ended.reason) == (RecipientStatus.SUPPRESSED, "opted-out")
    opted_out_at = h.clock.now

    h.act(other, CampaignAction.START)
    h.run_until_done(other)
    h.run_until_done(calling)
    with h.session() as session:
        after = session.scalars(
            sa.select(CallAttempt).where(
                CallAttempt.to_number == x, CallAttempt.dialed_at >= opted_out_at
            )
        ).all()
        in_call = session.get_one(CallAttempt, call_id)
    assert after == [], "no call to the number starts after the opt-out"
    assert in_call.status is AttemptStatus.ENDED, "the call in flight was left to end"
    assert len(_dials(h)[y]) == 2, "the other number is called by both campaigns"
    for campaign_id in (calling, other):
        assert h.counts(campaign_id) == h.truth(campaign_id)
