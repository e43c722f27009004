"""A freed slot's refill: the call it claims goes straight from its claim to the provider."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.calls.claiming import StartHere
from dialer.calls.results import DialResult
from dialer.concurrency.keys import cps_rates
from dialer.concurrency.semaphore.base import Admission
from dialer.db.models import CallAttempt, Recipient
from dialer.policy.attempt_state import AttemptStatus, RecipientStatus
from dialer.policy.campaign_state import CampaignAction
from tests.flow.harness import Harness, numbers


def _attempts(h: Harness) -> list[CallAttempt]:
    with h.session() as session:
        return list(session.scalars(sa.select(CallAttempt).order_by(CallAttempt.id)))


def _started(h: Harness, cid: str, count: int = 1) -> list[int]:
    h.act(cid, CampaignAction.START)
    refilled = h.runtime.refiller.refill(cid, most=count)
    assert refilled == count
    return [a.id for a in _attempts(h)]


def test_a_refill_claims_what_it_may_and_places_its_first_call_without_a_dial_task(
    engine: Engine,
) -> None:
    h = Harness(engine)
    cid = h.campaign(numbers(5), max_concurrency=3)

    _started(h, cid, count=1)

    [attempt] = _attempts(h)
    assert attempt.status is AttemptStatus.DIALING
    assert attempt.provider_call_id is not None, "placed in the refill's own thread"
    assert h.queue.sent == [], "no dial task"
    assert h.counts(cid) == h.truth(cid)
    assert h.counts(cid)["recipients.in_flight"] == 1


def test_a_refill_of_every_free_slot_places_one_call_and_queues_the_others(
    engine: Engine,
) -> None:
    h = Harness(engine)
    cid = h.campaign(numbers(5), max_concurrency=3)
    h.act(cid, CampaignAction.START)

    assert h.runtime.refiller.refill(cid) == 3

    first, *rest = _attempts(h)
    assert first.provider_call_id is not None
    assert [a.status for a in rest] == [AttemptStatus.QUEUED] * 2
    assert h.queue.sent == [a.id for a in rest]
    assert all(a.enqueued_at is not None for a in rest), "handed off: the outbox leaves them"
    assert h.counts(cid) == h.truth(cid)


def test_a_claim_whose_slot_is_lost_before_its_call_goes_back_to_the_queue_uncalled(
    engine: Engine,
) -> None:
    h = Harness(engine)
    cid = h.campaign(numbers(2), max_concurrency=1)
    h.act(cid, CampaignAction.START)
    result = h.runtime.dispatcher.tick(
        h.clock.now, campaign_ids=[cid], most=1, start_here=StartHere(1, h.runtime.gate.take_pace)
    )
    [job] = result.started
    # Between the claim's commit and the dial, the store lost the holder (a Redis restart)
    # and another call took the campaign's only slot.
    slots = h.stores.slots
    slots.release(job.attempt_id, job.scope)
    assert slots.acquire_many([replace(job.claim, attempt_id=10**9)], 60.0) == [Admission(True)]

    assert h.runtime.placer.place_started(job).result is DialResult.WAITING_FOR_SLOT

    [attempt] = _attempts(h)
    assert attempt.status is AttemptStatus.QUEUED
    assert attempt.provider_call_id is None
    assert attempt.provider_retries == 0, "no provider refused it"
    assert h.simulator.find_calls(attempt.to_number, attempt.from_number or "", h.clock.now) == []
    with h.session() as session:
        assert session.get_one(Recipient, attempt.recipient_id).status is RecipientStatus.QUEUED
    assert [attempt_id for _, attempt_id in h.queue.dials] == [attempt.id]
    assert h.counts(cid) == h.truth(cid)


def test_a_short_pace_wait_is_waited_out_in_the_refill(engine: Engine) -> None:
    h = Harness(engine, cps=100.0, sleep_advances=True)  # calls 10 ms apart
    cid = h.campaign(numbers(2), max_concurrency=2)
    config = h.runtime.calls
    # Another call started just now: this one's pace comes 10 ms later.
    rates = cps_rates(config.account, "+14155550100", account_cps=config.account_cps)
    assert h.stores.pacer.try_acquire(rates) == 0

    _started(h, cid, count=1)

    assert len(h.slept) == 1
    assert 0 < h.slept[0] <= 0.010
    [attempt] = _attempts(h)
    assert attempt.provider_call_id is not None
    assert h.queue.sent == []


def test_a_long_pace_wait_sends_the_call_through_the_queue(engine: Engine) -> None:
    h = Harness(engine, cps=1.0)
    cid = h.campaign(numbers(2), max_concurrency=2)
    config = h.runtime.calls
    rates = cps_rates(config.account, "+14155550100", account_cps=config.account_cps)
    assert h.stores.pacer.try_acquire(rates) == 0

    _started(h, cid, count=1)

    assert h.slept == [], "a wait of a whole second is not slept in the refill"
    [attempt] = _attempts(h)
    assert attempt.status is AttemptStatus.QUEUED
    assert attempt.enqueued_at is not None
    assert h.queue.sent == [attempt.id]
    assert h.counts(cid) == h.truth(cid)


def test_where_calls_are_dialed_an_ended_call_is_replaced_by_the_thread_that_ended_it(
    engine: Engine,
) -> None:
    # The pace spaces the two calls 10 ms apart.
    h = Harness(engine, refill_here=True, sleep_advances=True)
    cid = h.campaign(numbers(4), max_concurrency=2, retry_policy={"max_attempts": 1})
    h.act(cid, CampaignAction.START)
    h.step()
    assert len(_attempts(h)) == 2
    sent = list(h.queue.sent)
    # The two calls end (1 s setup, 5 s ring, 30 s talk) inside the simulator's delivery:
    # each end claims and places the next call there, before any tick or task.
    h.clock.advance(40)
    h.deliver_due()
    attempts = _attempts(h)
    assert [a.status for a in attempts[:2]] == [AttemptStatus.ENDED] * 2
    assert [a.provider_call_id is not None for a in attempts[2:]] == [True, True]
    assert h.queue.dispatches == []
    assert h.queue.sent == sent
    assert h.counts(cid) == h.truth(cid)


def test_a_refill_that_fails_leaves_the_slot_to_a_dispatch_task(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(engine, refill_here=True)
    cid = h.campaign(numbers(4), max_concurrency=1, retry_policy={"max_attempts": 1})
    h.act(cid, CampaignAction.START)
    h.step()

    def broken(campaign_id: str, *, most: int | None = None) -> int:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(h.runtime.refiller, "refill", broken)
    h.clock.advance(40)
    h.deliver_due()

    assert _attempts(h)[0].status is AttemptStatus.ENDED, "the end itself is kept"
    assert h.queue.dispatches == [cid], "and the freed slot is asked for again"


def test_a_closing_runtime_frees_the_slots_of_calls_that_end_and_claims_nothing(
    engine: Engine,
) -> None:
    h = Harness(engine, refill_here=True)
    cid = h.campaign(numbers(4), max_concurrency=2, retry_policy={"max_attempts": 1})
    h.act(cid, CampaignAction.START)
    h.step()
    assert len(_attempts(h)) == 2

    h.runtime.closing.set()  # as Runtime.close() starts: its event lanes still drain
    h.clock.advance(40)
    h.deliver_due()

    assert [a.status for a in _attempts(h)] == [AttemptStatus.ENDED] * 2, "nothing new claimed"
    assert h.semaphore.snapshot() == {}, "the ended calls' slots are free"
    assert h.queue.dispatches == []
    assert h.runtime.run_dispatch(cid) == 0
    assert len(_attempts(h)) == 2
