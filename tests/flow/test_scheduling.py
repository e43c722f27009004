"""Scheduler behaviour on a driven clock: weekly windows across DST, fairness, the reaper."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.calls import states
from dialer.calls.results import ReapVerdict, Resolution
from dialer.db.models import CallAttempt, Recipient, Tenant
from dialer.policy.attempt_state import AttemptStatus, Outcome, RecipientStatus
from dialer.policy.campaign_state import CampaignAction
from dialer.telephony.base import CallInfo, CallStatus, PlacedCall
from tests.flow.harness import Harness, numbers, profile

WEEKDAYS_NY = {
    "timezone": "America/New_York",
    "hours": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}],
}


def test_retry_lands_in_the_next_weekly_window_across_the_dst_change(engine: Engine) -> None:
    h = Harness(engine, sim=profile(human=0.0, busy=1.0))
    # Friday 2026-10-30 16:58 in New York (EDT, UTC-4); clocks go back on Sunday.
    h.clock.now = datetime(2026, 10, 30, 20, 58, tzinfo=UTC)
    cid = h.campaign(
        numbers(1),
        max_concurrency=1,
        weekly_schedule=WEEKDAYS_NY,
        retry_policy={"max_attempts": 2, "backoff": {"kind": "fixed", "delay": "5m"}, "jitter": 0},
    )
    h.act(cid, CampaignAction.START)
    for _ in range(30):
        h.step()
    with h.session() as session:
        recipient = session.scalars(sa.select(Recipient)).one()
    assert recipient.status is RecipientStatus.WAITING_RETRY
    # Monday 09:00 in New York is now EST (UTC-5): 14:00 UTC, not 13:00.
    assert recipient.next_attempt_at == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
    h.clock.now = datetime(2026, 11, 2, 13, 59, tzinfo=UTC)
    h.step(30)
    with h.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(CallAttempt)) == 1
    h.run_until_done(cid)
    with h.session() as session:
        second = session.scalars(
            sa.select(CallAttempt).where(CallAttempt.attempt_number == 2)
        ).one()
    assert second.dialed_at is not None
    assert second.dialed_at >= datetime(2026, 11, 2, 14, 0, tzinfo=UTC)


def test_outside_the_weekly_window_nothing_is_dispatched(engine: Engine) -> None:
    h = Harness(engine)
    h.clock.now = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)  # a Saturday
    cid = h.campaign(numbers(3), max_concurrency=3, weekly_schedule=WEEKDAYS_NY)
    h.act(cid, CampaignAction.START)
    for _ in range(10):
        h.step(60)
    with h.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(CallAttempt)) == 0
    h.clock.now = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # Monday 09:00 New York
    h.run_until_done(cid)


def test_a_huge_campaign_does_not_starve_a_small_one_sharing_the_tenant_cap(
    engine: Engine,
) -> None:
    h = Harness(engine)
    big = h.campaign(numbers(120, 1000), max_concurrency=50, name="big")
    small = h.campaign(numbers(4, 5000), max_concurrency=4, name="small")
    with h.session() as session, session.begin():
        session.scalars(sa.select(Tenant)).one().max_concurrency = 20
    h.act(big, CampaignAction.START)
    h.act(small, CampaignAction.START)
    result = h.runtime.dispatcher.tick(h.clock.now)
    with h.session() as session:
        per_campaign = dict(
            session.execute(
                sa.select(CallAttempt.campaign_id, sa.func.count()).group_by(
                    CallAttempt.campaign_id
                )
            ).all()
        )
    assert len(result.dispatched) == 20, "the tenant cap holds"
    assert per_campaign[small] == 4, per_campaign
    assert per_campaign[big] == 16


def test_a_small_campaign_started_after_a_huge_one_filled_the_tenant_cap_gets_its_share(
    engine: Engine,
) -> None:
    h = Harness(engine)
    big = h.campaign(numbers(200, 1000), max_concurrency=50, name="big")
    small = h.campaign(numbers(6, 5000), max_concurrency=6, name="small")
    with h.session() as session, session.begin():
        session.scalars(sa.select(Tenant)).one().max_concurrency = 10
    h.act(big, CampaignAction.START)
    h.step()
    assert h.peak_of(big) == 10, "the big campaign holds every slot of the tenant"
    h.act(small, CampaignAction.START)
    # Each slot the big campaign's calls free is refilled at once, before any scheduler
    # tick could see it: the refill hands it round-robin to the tenant's running campaigns.
    for _ in range(120):
        h.step()
        with h.session() as session:
            per_campaign = dict(
                session.execute(
                    sa.select(CallAttempt.campaign_id, sa.func.count())
                    .where(CallAttempt.status == AttemptStatus.ENDED)
                    .group_by(CallAttempt.campaign_id)
                ).all()
            )
        if per_campaign.get(big, 0) >= 10:
            break
    with h.session() as session:
        small_calls = session.scalar(
            sa.select(sa.func.count())
            .select_from(CallAttempt)
            .where(CallAttempt.campaign_id == small)
        )
    # The big campaign's first 10 ends freed 10 tenant slots: about half went to the small one.
    assert per_campaign.get(big, 0) >= 10
    assert small_calls is not None
    assert 3 <= small_calls <= 7, small_calls
    assert max(h.peak.get(k, 0) for k in h.peak if ":tenant:" in k) == 10


class LostCallbacks:
    """A provider whose calls end but whose callbacks never arrive."""

    name = "twilio"

    def __init__(self) -> None:
        self.n = 0

    def place_call(self, request: Any) -> PlacedCall:
        self.n += 1
        return PlacedCall(f"CA{self.n:032d}", CallStatus.QUEUED)

    def fetch(self, provider_call_id: str) -> CallInfo:
        return CallInfo(provider_call_id, CallStatus.NO_ANSWER, "", "", duration_s=0)

    def hang_up(self, provider_call_id: str) -> None:
        pass

    def find_calls(self, to: str, from_: str, since: datetime) -> list[CallInfo]:
        return []  # the dial never reached the provider

    def run_due(self, now: Any, *, most: int | None = None) -> int:
        return 0


def test_reaper_settles_calls_whose_callbacks_were_lost(engine: Engine) -> None:
    h = Harness(engine, provider=LostCallbacks())
    cid = h.campaign(numbers(2), max_concurrency=2, retry_policy={"max_attempts": 1})
    h.act(cid, CampaignAction.START)
    h.step()
    report = h.runtime.reap(h.clock.now)
    assert report.examined == 0, "nothing is stuck before its bound"
    h.clock.advance(h.runtime.calls.call_lease_s + 1)
    report = h.runtime.reap(h.clock.now)
    assert len(report.of(ReapVerdict.ENDED)) == 2
    with h.session() as session:
        attempts = list(session.scalars(sa.select(CallAttempt)))
        recipients = list(session.scalars(sa.select(Recipient)))
    assert {(a.status, a.outcome) for a in attempts} == {(AttemptStatus.ENDED, Outcome.NO_ANSWER)}
    assert {r.status for r in recipients} == {RecipientStatus.EXHAUSTED}
    assert h.semaphore.snapshot() == {}
    assert h.counts(cid) == h.truth(cid)


def test_reaper_resolves_a_dial_left_without_a_call_id(engine: Engine) -> None:
    h = Harness(engine, provider=LostCallbacks())
    cid = h.campaign(numbers(1), max_concurrency=1, retry_policy={"max_attempts": 1})
    h.act(cid, CampaignAction.START)
    h.runtime.dispatcher.tick(h.clock.now)
    ((_, attempt_id),) = h.queue.dials
    _claimed_by_a_worker_that_died(h, attempt_id)
    h.clock.advance(121)
    report = h.runtime.reap(h.clock.now)
    assert report.of(ReapVerdict.ENDED) == [attempt_id]
    with h.session() as session:
        attempt = session.get_one(CallAttempt, attempt_id)
    assert attempt.outcome is Outcome.UNKNOWN
    assert h.semaphore.snapshot() == {}
    assert h.counts(cid) == h.truth(cid)


def test_an_unplaced_dial_never_adopts_another_attempts_call(engine: Engine) -> None:
    provider = LostCallbacks()
    h = Harness(engine, provider=provider)
    cid = h.campaign(numbers(2), max_concurrency=1, retry_policy={"max_attempts": 1})
    h.act(cid, CampaignAction.START)
    h.step()  # the first recipient's call is placed: CA...1
    with h.session() as session:
        first = session.scalars(sa.select(CallAttempt)).one()
    earlier = CallInfo(first.provider_call_id or "", CallStatus.COMPLETED, "", "")
    provider.find_calls = lambda to, from_, since: [earlier]  # type: ignore[method-assign]
    h.runtime.ingestor.apply_call_info(first.id, earlier)  # it ends; its slot frees
    h.runtime.dispatcher.tick(h.clock.now)
    second_id = h.queue.dials[-1][1]
    _claimed_by_a_worker_that_died(h, second_id)
    resolved = h.runtime.resolver.resolve(second_id, since=h.clock.now)
    assert resolved.resolution is Resolution.NO_CALL
    with h.session() as session:
        second = session.get_one(CallAttempt, second_id)
    assert second.provider_call_id is None
    assert second.outcome is Outcome.UNKNOWN


def _claimed_by_a_worker_that_died(h: Harness, attempt_id: int) -> None:
    """The claim of a dial task whose worker died right after it: dialing, no call id."""
    with h.session() as session, session.begin():
        attempt = session.get_one(CallAttempt, attempt_id)
        assert states.claim(session, attempt.id, attempt.recipient_id, h.clock.now)
