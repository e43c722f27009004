"""An opt-out racing a dial on PostgreSQL: the dial either committed first (its call was
starting, and is left to end) or no call starts. SQLite runs one writer at a time (its
transactions begin IMMEDIATE), so there is no race to stage there."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.calls import counters
from dialer.calls.jobs import DialJob
from dialer.calls.results import DialResult
from dialer.calls.states import OptedOut
from dialer.db.models import CallAttempt, Campaign, Recipient, Suppression
from dialer.policy.attempt_state import AttemptStatus, Outcome, RecipientStatus
from dialer.policy.campaign_state import CampaignAction
from dialer.services import suppression
from tests.carrier.support import wait_until
from tests.flow.harness import Harness, numbers
from tests.flow.test_ingestion import SilentProvider

NUMBER = numbers(1)[0]


@dataclass
class Held:
    """A dial stopped inside its transaction, holding its attempt's row, until released."""

    h: Harness
    provider: SilentProvider
    campaign_id: str
    tenant_id: str
    attempt_id: int
    holding: threading.Event
    release: threading.Event
    dialed: list[Any]
    thread: threading.Thread

    def finish(self) -> None:
        self.release.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


def _held_dial(engine: Engine, while_held: Callable[[], None] = lambda: None) -> Iterator[Held]:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: an opt-out cannot land inside a dial")
    provider = SilentProvider()
    h = Harness(engine, provider=provider)
    cid = h.campaign([NUMBER], max_concurrency=1)
    h.act(cid, CampaignAction.START)
    h.runtime.dispatcher.tick(h.clock.now, campaign_ids=[cid])
    [(_, attempt_id)] = h.queue.dials
    with h.session() as session:
        tenant_id = session.get_one(Campaign, cid).tenant_id
    holding, release = threading.Event(), threading.Event()
    gate = h.runtime.placer._gate
    admit = gate.admit

    def held_admit(job: DialJob) -> Any:
        result = admit(job)
        holding.set()
        assert release.wait(30)
        return result

    gate.admit = held_admit  # type: ignore[method-assign]
    dialed: list[Any] = []
    thread = threading.Thread(target=lambda: dialed.append(h.runtime.run_dial(attempt_id)))
    thread.start()
    assert holding.wait(30)
    held = Held(h, provider, cid, tenant_id, attempt_id, holding, release, dialed, thread)
    try:
        yield held
    finally:
        release.set()
        thread.join(timeout=30)


@pytest.fixture
def held(engine: Engine) -> Iterator[Held]:
    yield from _held_dial(engine)


def _waiting_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        )


def test_an_opt_out_waits_for_a_dial_holding_the_attempt_which_goes_ahead(
    held: Held, engine: Engine
) -> None:
    opted: list[OptedOut] = []

    def opt_out() -> None:
        with held.h.session() as session, session.begin():
            added = suppression.add(
                session, held.tenant_id, NUMBER, None, source="api", now=held.h.clock.now
            )
            opted.append(added.ended)

    opting = threading.Thread(target=opt_out)
    opting.start()
    wait_until(lambda: _waiting_on_a_lock(engine), timeout_s=30)
    assert opted == [], "the opt-out waits for the dial's row"

    held.finish()
    opting.join(timeout=30)

    assert held.dialed[0].result is DialResult.DIALED, "committed first: its call starts"
    assert held.provider.n == 1
    assert opted == [OptedOut(recipients=0, attempts_canceled=0)], "nothing left to end"
    with held.h.session() as session:
        attempt = session.get_one(CallAttempt, held.attempt_id)
        recipient = session.get_one(Recipient, attempt.recipient_id)
        assert attempt.status is AttemptStatus.DIALING, "in flight: left to end"
        assert recipient.status is RecipientStatus.IN_FLIGHT
        assert session.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 1
    assert held.h.counts(held.campaign_id) == held.h.truth(held.campaign_id)


def test_a_dial_whose_recipient_an_opt_out_ended_while_it_held_the_attempt_never_calls(
    held: Held,
) -> None:
    # What an opt-out does when a dial holds a queued attempt it could not lock (one a
    # dispatch committed while the opt-out waited for the recipient): the number listed, the
    # recipient ended, the attempt left to the dial, all committed while the dial holds it.
    with held.h.session() as session, session.begin():
        session.add(
            Suppression(tenant_id=held.tenant_id, phone_number=NUMBER, created_at=held.h.clock.now)
        )
        recipient = session.scalars(sa.select(Recipient)).one()
        recipient.status = RecipientStatus.SUPPRESSED
        recipient.reason = "opted-out"
        counters.bump(
            session,
            held.campaign_id,
            counters.moved(RecipientStatus.QUEUED, RecipientStatus.SUPPRESSED),
        )

    held.finish()

    assert held.dialed[0].result is DialResult.SCREENED_OUT
    assert held.provider.n == 0, "no call after the opt-out committed"
    with held.h.session() as session:
        attempt = session.get_one(CallAttempt, held.attempt_id)
        recipient = session.get_one(Recipient, attempt.recipient_id)
        assert (attempt.status, attempt.outcome) == (AttemptStatus.ENDED, Outcome.CANCELED)
        assert (recipient.status, recipient.reason) == (RecipientStatus.SUPPRESSED, "opted-out")
    assert held.h.counts(held.campaign_id) == held.h.truth(held.campaign_id)
    assert held.h.semaphore.snapshot() == {}, "the dial's slot is freed"


def test_an_attempt_a_dispatch_commits_while_the_opt_out_waits_is_canceled(
    engine: Engine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: an opt-out cannot land inside a dispatch")
    h = Harness(engine, provider=SilentProvider())
    cid = h.campaign([NUMBER], max_concurrency=1)
    h.act(cid, CampaignAction.START)
    opted: list[OptedOut] = []
    # A dispatch's claim, as it writes it, held open: the recipient locked and queued, its
    # attempt inserted, nothing committed yet.
    with h.session() as claiming, claiming.begin():
        campaign = claiming.get_one(Campaign, cid)
        recipient = claiming.scalars(sa.select(Recipient).with_for_update()).one()
        claiming.add(
            CallAttempt(
                recipient_id=recipient.id,
                campaign_id=cid,
                run_id=campaign.current_run_id,
                attempt_number=1,
                to_number=NUMBER,
                from_number=campaign.caller_id_number,
                status=AttemptStatus.QUEUED,
                queued_at=h.clock.now,
            )
        )
        recipient.status = RecipientStatus.QUEUED
        recipient.attempt_count = recipient.run_attempts = 1
        counters.bump(
            claiming, cid, counters.moved(RecipientStatus.PENDING, RecipientStatus.QUEUED)
        )
        claiming.flush()
        tenant_id = campaign.tenant_id

        def opt_out() -> None:
            with h.session() as session, session.begin():
                added = suppression.add(
                    session, tenant_id, NUMBER, None, source="api", now=h.clock.now
                )
                opted.append(added.ended)

        opting = threading.Thread(target=opt_out)
        opting.start()
        wait_until(lambda: _waiting_on_a_lock(engine), timeout_s=30)
    opting.join(timeout=30)

    assert opted == [OptedOut(recipients=1, attempts_canceled=1)]
    with h.session() as session:
        attempt = session.scalars(sa.select(CallAttempt)).one()
        assert (attempt.status, attempt.outcome) == (AttemptStatus.ENDED, Outcome.CANCELED)
        assert session.scalars(sa.select(Recipient)).one().status is RecipientStatus.SUPPRESSED
    assert h.counts(cid) == h.truth(cid)
