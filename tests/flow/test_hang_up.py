"""Hanging up a stopped campaign's calls: the placed ones at once, a dial under way once its
call id is stored, and nothing forever."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.calls import states
from dialer.calls.hanging_up import UNPLACED_WAIT_S, HangUps
from dialer.db.models import CallAttempt, Recipient
from dialer.policy.attempt_state import TERMINAL_RECIPIENT, AttemptStatus
from dialer.policy.campaign_state import CampaignAction
from dialer.telephony.base import CallRequest
from tests.flow.harness import Harness, numbers, profile


def _one_placed_one_dialing(h: Harness) -> tuple[str, CallAttempt]:
    """A stopped campaign with one call up and one dial a worker is still placing."""
    cid = h.campaign(numbers(2), max_concurrency=2)
    h.act(cid, CampaignAction.START)
    h.runtime.dispatcher.tick(h.clock.now)
    first, second = sorted(h.queue.dials, key=lambda d: d[1])
    h.queue.dials.clear()
    h.runtime.run_dial(first[1])
    with h.session() as session, session.begin():
        dialing = session.get_one(CallAttempt, second[1])
        assert states.claim(session, dialing.id, dialing.recipient_id, h.clock.now)
        session.expunge(dialing)
    h.act(cid, CampaignAction.STOP)
    return cid, dialing


def test_a_dial_under_way_is_hung_up_once_its_call_id_is_stored(engine: Engine) -> None:
    h = Harness(engine, sim=profile(human=1.0))
    cid, dialing = _one_placed_one_dialing(h)
    slept: list[float] = []

    def worker_finishes_its_dial(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:  # a second later, the worker's request returns
            placed = h.simulator.place_call(
                CallRequest(
                    attempt_id=str(dialing.id),
                    campaign_id=cid,
                    to=dialing.to_number,
                    from_=dialing.from_number or "",
                    time_limit_s=600,
                )
            )
            with h.session() as session, session.begin():
                states.record_dial(session, dialing.id, "simulator", placed.provider_call_id)

    hang_ups = HangUps(h.sessions, h.simulator, h.runtime.ingestor, sleep=worker_finishes_its_dial)
    report = hang_ups.campaign(cid)
    assert (report.asked, len(report.freed), report.unplaced, report.failed) == (2, 2, 0, [])
    assert len(slept) == 2
    assert h.simulator.live_calls().ids == frozenset()
    with h.session() as session:
        assert set(session.scalars(sa.select(CallAttempt.status))) == {AttemptStatus.ENDED}
    h.deliver_due()
    assert h.truth(cid) == h.counts(cid)
    with h.session() as session:
        assert set(session.scalars(sa.select(Recipient.status))) <= TERMINAL_RECIPIENT


def test_a_dial_that_never_settles_is_waited_for_a_bounded_while(engine: Engine) -> None:
    h = Harness(engine, sim=profile(human=1.0))
    cid, dialing = _one_placed_one_dialing(h)
    slept: list[float] = []
    report = HangUps(h.sessions, h.simulator, h.runtime.ingestor, sleep=slept.append).campaign(cid)
    assert (report.asked, report.unplaced) == (1, 1)
    assert UNPLACED_WAIT_S <= sum(slept) < UNPLACED_WAIT_S + 1
    with h.session() as session:
        still = session.get_one(CallAttempt, dialing.id)
        assert (still.status, still.provider_call_id) == (AttemptStatus.DIALING, None)
