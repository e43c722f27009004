"""The scheduler loop's reconcile of the semaphore with the database, and what it logs."""

from __future__ import annotations

import itertools
import logging
from collections import Counter

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.calls import states
from dialer.calls.results import DialResult
from dialer.concurrency.keys import holder_id
from dialer.db.models import CallAttempt, Campaign
from dialer.policy.attempt_state import AttemptStatus, Outcome
from dialer.policy.campaign_state import CampaignAction, CampaignStatus
from dialer.services import campaigns
from scheduler.loop import SchedulerLoop, backoff_s
from tests.flow.harness import Harness, numbers


def _call_ended_elsewhere(h: Harness) -> int:
    """One call dialed, then ended by another process: its slot is still held here."""
    cid = h.campaign(numbers(1), max_concurrency=1)
    h.act(cid, CampaignAction.START)
    h.step(0)
    with h.session() as session, session.begin():
        attempt = session.scalars(sa.select(CallAttempt)).one()
        assert attempt.status is AttemptStatus.DIALING
        states.end(session, attempt.id, Outcome.HUMAN, now=h.clock.now)
    held = {holder for holders in h.semaphore.snapshot().values() for holder in holders}
    assert held == {holder_id(attempt.id)}
    return attempt.id


def test_a_reconcile_that_frees_a_slot_says_which(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness(engine)
    attempt_id = _call_ended_elsewhere(h)
    loop = SchedulerLoop(h.runtime, interval_s=1.0, reconcile_interval_s=60.0)
    with caplog.at_level(logging.INFO):
        loop.reconcile(h.clock.now)
    assert h.semaphore.snapshot() == {}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("reconciled" in m and holder_id(attempt_id) in m for m in warnings)


def test_freeing_ended_calls_each_tick_is_quiet(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Embedded mode frees the slots of calls the API saw end at every tick: that is the
    normal course of things, not a repair, and a line a tick would drown the log."""
    h = Harness(engine)
    loop = SchedulerLoop(
        h.runtime, interval_s=1.0, reconcile_interval_s=60.0, free_ended_each_tick=True
    )
    loop.run_once(h.clock.now)  # the first run reconciles in full
    _call_ended_elsewhere(h)
    # Only the second run's lines: the first run's full reconcile is logged too, at INFO, and
    # is captured whenever an earlier test of this process set the loggers to INFO.
    caplog.clear()
    with caplog.at_level(logging.INFO):
        loop.run_once(h.clock.now)
    assert h.semaphore.snapshot() == {}
    assert not [r for r in caplog.records if "reconciled" in r.getMessage()]


def test_failing_ticks_back_off_and_come_back_to_the_interval() -> None:
    assert backoff_s(0.5, 0) == 0.5
    assert [backoff_s(0.5, n) for n in (1, 2, 3, 4, 5, 50)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff_s(30.0, 3) == 30.0  # never shorter than the interval itself


def test_a_dial_waiting_for_its_pace_is_not_resent_from_the_outbox(engine: Engine) -> None:
    """Claims that leave the pace to the dial (``pace_at_claim`` off): a PATCH raising
    ``max_concurrency`` mid-run claims more calls at once than the pace starts: their dial
    tasks wait, each sent again with a countdown until its turn, longer than the outbox's
    ``lost_task_timeout_s``. A task sent again is a hand-off like any other, so the outbox
    (for tasks no worker started) never sends a second one."""
    h = Harness(engine, cps=0.1, pace_at_claim=False)  # a call every 10 s
    cid = h.campaign(numbers(9), max_concurrency=1)
    h.act(cid, CampaignAction.START)
    loop = SchedulerLoop(h.runtime, interval_s=1.0, reconcile_interval_s=3600.0)
    loop.run_once(h.clock.now)
    h.run_tasks()
    with h.session() as session, session.begin():
        tenant_id = session.get_one(Campaign, cid).tenant_id
        campaigns.update(session, tenant_id, cid, {"max_concurrency": 9}, now=h.clock.now)

    twice: set[int] = set()
    for _ in range(300):
        if h.status(cid) is CampaignStatus.COMPLETED:
            break
        loop.run_once(h.clock.now)
        h.run_tasks()
        h.clock.advance(1.0)
        h.deliver_due()
        h.run_tasks()
        pending = Counter(attempt_id for _, attempt_id in h.queue.dials)
        twice |= {attempt_id for attempt_id, tasks in pending.items() if tasks > 1}
    assert h.status(cid) is CampaignStatus.COMPLETED

    waits_s = [(a.dialed_at - a.queued_at).total_seconds() for a in _attempts(h) if a.dialed_at]
    lost_task_timeout_s = h.runtime.dispatcher.config.lost_task_timeout_s
    assert len(waits_s) == 9
    assert max(waits_s) > lost_task_timeout_s + 10, "dials waited their pace past the timeout"
    assert twice == set(), "a waiting dial had a second task"
    assert loop.stats.resent == 0
    assert len(h.simulator._calls) == 9


def test_claims_paced_at_the_claim_are_dialed_without_waiting(engine: Engine) -> None:
    """The same PATCH with the pace reserved at the claim: each tick claims only the call the
    pace starts within its horizon, and its dial task, sent with the wait to that instant,
    starts it without being sent back; the outbox never sends a task twice."""
    h = Harness(engine, cps=0.1)  # a call every 10 s
    cid = h.campaign(numbers(9), max_concurrency=1)
    h.act(cid, CampaignAction.START)
    loop = SchedulerLoop(h.runtime, interval_s=1.0, reconcile_interval_s=3600.0)
    loop.run_once(h.clock.now)
    h.run_tasks()
    with h.session() as session, session.begin():
        tenant_id = session.get_one(Campaign, cid).tenant_id
        campaigns.update(session, tenant_id, cid, {"max_concurrency": 9}, now=h.clock.now)
    for _ in range(300):
        if h.status(cid) is CampaignStatus.COMPLETED:
            break
        loop.run_once(h.clock.now)
        h.run_tasks()
        h.clock.advance(1.0)
        h.deliver_due()
        h.run_tasks()
    assert h.status(cid) is CampaignStatus.COMPLETED
    dialed = sorted(a.dialed_at for a in _attempts(h) if a.dialed_at)
    assert len(dialed) == 9
    assert min((b - a).total_seconds() for a, b in itertools.pairwise(dialed)) >= 10.0
    assert DialResult.PACED not in h.dial_results
    assert max((a.dialed_at - a.queued_at).total_seconds() for a in _attempts(h)) <= 1.0
    assert loop.stats.resent == 0
    assert len(h.simulator._calls) == 9


def test_the_dial_tasks_the_outbox_sends_again_are_counted(engine: Engine) -> None:
    h = Harness(engine)
    cid = h.campaign(numbers(3), max_concurrency=3)
    h.act(cid, CampaignAction.START)
    loop = SchedulerLoop(h.runtime, interval_s=1.0, reconcile_interval_s=3600.0)
    dispatcher = h.runtime.dispatcher
    dispatcher.after_commit = _die  # the tick's claims commit; their tasks are never sent
    with pytest.raises(_Died):
        loop.run_once(h.clock.now)
    dispatcher.after_commit = None
    assert loop.stats.resent == 0
    h.clock.advance(dispatcher.config.outbox_timeout_s + 1)
    loop.run_once(h.clock.now)
    assert loop.stats.resent == 3
    assert sorted(h.queue.sent) == sorted(a.id for a in _attempts(h))


class _Died(Exception):
    pass


def _die(attempt_ids: object) -> None:
    raise _Died


def _attempts(h: Harness) -> list[CallAttempt]:
    with h.session() as session:
        return list(session.scalars(sa.select(CallAttempt)))
