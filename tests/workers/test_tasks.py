"""The Celery task bodies, run in this process on real Redis (broker and semaphore)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from dialer.api.schemas.recipients import RecipientIn
from dialer.calls.results import ReapVerdict
from dialer.clock import utc_now
from dialer.concurrency.keys import cps_rates
from dialer.concurrency.rate.base import Rate
from dialer.db.engine import make_engine, session_factory
from dialer.db.migrate import upgrade
from dialer.db.models import CallAttempt
from dialer.errors import TerminalProviderError
from dialer.policy.attempt_state import AttemptStatus, Outcome
from dialer.policy.campaign_state import CampaignAction
from dialer.queue.celery import DIAL_QUEUE, EVENTS_QUEUE
from dialer.services import campaigns, tenancy
from dialer.settings import Settings
from dialer.telephony.twilio.callbacks import parse_event
from tests.db import factories
from tests.e2e.fleet import claim_redis_db, place_open_now
from workers.celery_app import DialerWorker, create_worker

#: Redis databases this module may take for its broker (the e2e fleet scans from 14 down).
BROKER_DBS = range(1, 15)


@pytest.fixture
def worker_app(redis_url: str, tmp_path: Path) -> Iterator[tuple[DialerWorker, str, redis.Redis]]:
    broker_url = claim_redis_db(redis_url, BROKER_DBS)
    broker = redis.Redis.from_url(broker_url, socket_timeout=5)
    database_url = f"sqlite:///{tmp_path / 'dialer.db'}"
    upgrade(database_url)
    settings = Settings(
        database_url=database_url,
        redis_url=broker_url,
        provider="simulator",
        calls_per_second=1000,
        # Calls ring only after a minute: each stays where its dial left it during the test.
        simulator_profile="weights=human=1;setup=fixed:60",
    )
    worker = create_worker(settings)
    try:
        yield worker, database_url, broker
    finally:
        worker.close()
        broker.flushdb()
        broker.close()


def _running_campaign(worker_app: tuple[DialerWorker, str, redis.Redis]) -> str:
    """A started campaign of 5 recipients and 3 slots; the dial queue emptied."""
    _, database_url, broker = worker_app
    broker.delete(DIAL_QUEUE)
    engine = make_engine(database_url)
    place = place_open_now()
    with session_factory(engine)() as session, session.begin():
        owner = tenancy.ensure_tenant(session, "workers", now=utc_now())
        factories.phone_number(session, owner.id, "+14155550100")
        campaign, _ = campaigns.create(
            session,
            owner.id,
            {
                "name": "tasks",
                "assistant_id": "a",
                "phone_number_id": "+14155550100",
                "max_concurrency": 3,
                "retry_policy": {"max_attempts": 1},
                "speech_settings": {},
            },
            now=utc_now(),
            recipients=[RecipientIn(phone_number=place.number(7000 + i)) for i in range(5)],
        )
        campaigns.act(session, owner.id, campaign.id, CampaignAction.START, now=utc_now())
        campaign_id = campaign.id
    engine.dispose()
    return campaign_id


def _attempts(database_url: str) -> list[CallAttempt]:
    engine = make_engine(database_url)
    with session_factory(engine)() as session:
        found = list(session.scalars(sa.select(CallAttempt).order_by(CallAttempt.id)))
    engine.dispose()
    return found


def test_a_slot_freed_dispatch_dials_its_first_claim_and_queues_the_rest(
    worker_app: tuple[DialerWorker, str, redis.Redis],
) -> None:
    worker, database_url, broker = worker_app
    campaign_id = _running_campaign(worker_app)

    dispatched = worker.celery.tasks["dialer.dispatch_campaign"](campaign_id)

    assert dispatched == 3  # the free slots
    attempts = _attempts(database_url)
    assert len(attempts) == 3
    dialed = [a for a in attempts if a.provider_call_id is not None]
    queued = [a for a in attempts if a.status is AttemptStatus.QUEUED]
    # The first claim was dialed here, without a trip through the queue...
    assert [a.id for a in dialed] == [attempts[0].id]
    assert dialed[0].status is AttemptStatus.DIALING
    # ...and the others wait in the dial queue, one task each, marked handed off (the
    # lost-task recovery re-sends them if no worker ever starts them).
    assert [a.id for a in queued] == [a.id for a in attempts[1:]]
    assert broker.llen(DIAL_QUEUE) == 2
    assert all(a.enqueued_at is not None for a in queued)


def test_a_dispatch_that_dies_between_its_claim_and_the_provider_leaves_the_call_to_the_reaper(
    worker_app: tuple[DialerWorker, str, redis.Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    worker, database_url, broker = worker_app
    campaign_id = _running_campaign(worker_app)
    rt = worker.runtime()

    def die(request: object) -> object:
        raise SystemExit("the worker died before the provider took the call")

    monkeypatch.setattr(rt.provider, "place_call", die)
    with pytest.raises(SystemExit):
        worker.celery.tasks["dialer.dispatch_campaign"](campaign_id)
    monkeypatch.undo()

    # The first claim went straight to dialing and died there: nothing else was claimed yet.
    [started] = _attempts(database_url)
    assert started.status is AttemptStatus.DIALING
    assert started.provider_call_id is None
    assert broker.llen(DIAL_QUEUE) == 0
    # A dialing attempt is no task to send again (a second dial could call twice)...
    later = utc_now() + timedelta(seconds=rt.settings.reap_unplaced_after_s + 1)
    assert rt.dispatcher.recover_outbox(later) == []
    # ...the reaper asks the provider, which has no such call: it ends, its slot is freed.
    report = rt.reap(later)
    assert report.of(ReapVerdict.ENDED) == [started.id]
    [ended] = [a for a in _attempts(database_url) if a.id == started.id]
    assert ended.status is AttemptStatus.ENDED
    assert ended.outcome is Outcome.UNKNOWN
    assert started.id not in rt.stores.slots.holders(campaign_id)


def test_a_callback_that_ends_a_call_in_a_worker_refills_its_slot_in_the_same_thread(
    worker_app: tuple[DialerWorker, str, redis.Redis],
) -> None:
    worker, database_url, broker = worker_app
    campaign_id = _running_campaign(worker_app)
    rt = worker.runtime()
    worker.celery.tasks["dialer.dispatch_campaign"](campaign_id)
    first = _attempts(database_url)[0]
    assert first.provider_call_id is not None
    broker.delete(DIAL_QUEUE, EVENTS_QUEUE)

    rt.take_event(first.id, parse_event("status", _completed(first.provider_call_id)))

    attempts = _attempts(database_url)
    assert attempts[0].status is AttemptStatus.ENDED
    # Its slot went to the next recipient, dialed from here: no dispatch task, no dial task.
    [refill] = [a for a in attempts if a.id not in {x.id for x in attempts[:3]}]
    assert refill.status is AttemptStatus.DIALING
    assert refill.provider_call_id is not None
    assert broker.llen(EVENTS_QUEUE) == 0
    assert broker.llen(DIAL_QUEUE) == 0
    assert rt.stores.slots.in_use(campaign_id) == 3


def test_a_refill_whose_call_is_refused_asks_the_queue_instead_of_refilling_inside_itself(
    worker_app: tuple[DialerWorker, str, redis.Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    worker, database_url, broker = worker_app
    campaign_id = _running_campaign(worker_app)
    rt = worker.runtime()
    broker.delete(EVENTS_QUEUE)

    def refuse(request: object) -> object:
        raise TerminalProviderError("Invalid 'To' Phone Number", code="21211", status=400)

    monkeypatch.setattr(rt.provider, "place_call", refuse)
    worker.celery.tasks["dialer.dispatch_campaign"](campaign_id)

    attempts = _attempts(database_url)
    # The first call failed at once. The slot it freed asked for a dispatch task rather than
    # a refill nested in this one (a list of bad numbers must not recurse); the refill went on
    # with the free slots, that one included, for the dial queue.
    assert [a.outcome for a in attempts] == [Outcome.FAILED, None, None, None]
    assert broker.llen(EVENTS_QUEUE) == 1
    assert broker.llen(DIAL_QUEUE) == 3


def _completed(call_sid: str) -> dict[str, str]:
    return {
        "CallSid": call_sid,
        "CallStatus": "completed",
        "SequenceNumber": "3",
        "CallDuration": "12",
        "AnsweredBy": "human",
    }


def test_a_first_claim_that_must_wait_for_its_pace_goes_through_the_queue_handed_off(
    worker_app: tuple[DialerWorker, str, redis.Redis],
) -> None:
    worker, database_url, broker = worker_app
    campaign_id = _running_campaign(worker_app)
    rt = worker.runtime()
    # Another client of the account took its pace for a long while: the first claim's dial
    # must wait for it.
    [account] = cps_rates(rt.calls.account)
    assert rt.stores.pacer.try_acquire([Rate(account.key, per_s=2)]) == 0

    worker.celery.tasks["dialer.dispatch_campaign"](campaign_id)

    attempts = _attempts(database_url)
    assert all(a.status is AttemptStatus.QUEUED for a in attempts)
    # It was not started in the dispatch: it and the other two went to the dial queue (the
    # dial task waits out the pace), marked handed off, so the outbox sends no second task.
    assert all(a.enqueued_at is not None for a in attempts)
    assert broker.llen(DIAL_QUEUE) == 3
    later = utc_now() + timedelta(seconds=rt.dispatcher.config.outbox_timeout_s + 1)
    assert rt.dispatcher.recover_outbox(later) == []
