"""Whole campaigns on a driven clock: limits, retries, lifecycle, at-most-once dialing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from itertools import pairwise

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.calls.results import DialResult
from dialer.db.models import CallAttempt, Campaign, Recipient
from dialer.policy.attempt_state import AttemptStatus, Outcome, RecipientStatus
from dialer.policy.campaign_state import CampaignAction, CampaignStatus
from tests.flow.harness import Harness, numbers, profile


def _recipients(h: Harness, campaign_id: str) -> list[Recipient]:
    with h.session() as session:
        return list(
            session.scalars(
                sa.select(Recipient)
                .where(Recipient.campaign_id == campaign_id)
                .order_by(Recipient.id)
            )
        )


def _attempts(h: Harness, campaign_id: str) -> list[CallAttempt]:
    with h.session() as session:
        return list(
            session.scalars(
                sa.select(CallAttempt)
                .where(CallAttempt.campaign_id == campaign_id)
                .order_by(CallAttempt.id)
            )
        )


def test_campaign_completes_within_its_concurrency(engine: Engine) -> None:
    h = Harness(engine)
    cid = h.campaign(numbers(10), max_concurrency=3)
    h.act(cid, CampaignAction.START)
    h.run_until_done(cid)
    assert h.peak_of(cid) == 3
    assert all(r.status is RecipientStatus.DONE for r in _recipients(h, cid))
    attempts = _attempts(h, cid)
    assert len(attempts) == 10
    assert all(a.outcome is Outcome.HUMAN and a.duration_s == 30 for a in attempts)
    assert h.counts(cid) == h.truth(cid)
    with h.session() as session:
        from dialer.db.models import Campaign

        assert session.get_one(Campaign, cid).ended_reason.value == "campaign.ended.success"  # type: ignore[union-attr]
    assert h.semaphore.snapshot() == {}


def test_retries_follow_the_policy_then_exhaust(engine: Engine) -> None:
    h = Harness(engine, sim=profile(human=0.0, busy=1.0))
    cid = h.campaign(numbers(2), max_concurrency=2)
    h.act(cid, CampaignAction.START)
    h.run_until_done(cid)
    attempts = _attempts(h, cid)
    assert len(attempts) == 6
    per = Counter(a.recipient_id for a in attempts)
    assert set(per.values()) == {3}
    for recipient in _recipients(h, cid):
        assert recipient.status is RecipientStatus.EXHAUSTED
        assert recipient.reason == "last-outcome-busy"
        mine = [a for a in attempts if a.recipient_id == recipient.id]
        gaps = [(b.queued_at - a.ended_at).total_seconds() for a, b in pairwise(mine)]  # type: ignore[operator]
        assert all(gap >= 60 for gap in gaps), gaps
    assert h.counts(cid) == h.truth(cid)


def test_redelivered_dial_tasks_dial_once(engine: Engine) -> None:
    h = Harness(engine)
    cid = h.campaign(numbers(6), max_concurrency=6)
    h.act(cid, CampaignAction.START)
    h.runtime.dispatcher.tick(h.clock.now)
    # At-least-once delivery: every task arrives three times.
    h.queue.dials = h.queue.dials * 3
    for _ in range(20):  # the pacer spaces the starts; let every task (and copy) run
        h.run_tasks()
        h.clock.advance(0.05)
    results = Counter(h.dial_results)
    assert results[DialResult.DIALED] == 6
    assert results[DialResult.NOT_QUEUED] >= 12
    assert len(h.simulator._calls) == 6
    h.run_until_done(cid)
    assert len(_attempts(h, cid)) == 6


def test_duplicate_and_reordered_callbacks_change_nothing(engine: Engine) -> None:
    h = Harness(engine, sim=profile(human=0.5, voicemail=0.5))
    cid = h.campaign(numbers(8), max_concurrency=4)
    h.act(cid, CampaignAction.START)
    h.run_until_done(cid)
    before = (
        [(a.id, a.status, a.outcome, a.answered_by) for a in _attempts(h, cid)],
        h.counts(cid),
    )
    for attempt_id, event in reversed(list(h.sink.delivered)):
        h.runtime.take_event(attempt_id, event)
    after = ([(a.id, a.status, a.outcome, a.answered_by) for a in _attempts(h, cid)], h.counts(cid))
    assert after == before
    assert h.counts(cid) == h.truth(cid)
    assert Counter(a.outcome for a in _attempts(h, cid)).keys() <= {
        Outcome.HUMAN,
        Outcome.VOICEMAIL,
    }


def test_pause_lets_calls_finish_and_resume_continues(engine: Engine) -> None:
    h = Harness(engine)
    cid = h.campaign(numbers(6), max_concurrency=2)
    h.act(cid, CampaignAction.START)
    h.step()
    h.step()
    assert len(_attempts(h, cid)) == 2
    h.act(cid, CampaignAction.PAUSE)
    for _ in range(60):
        h.step()
    assert len(_attempts(h, cid)) == 2, "no new dial while paused"
    assert all(a.outcome is Outcome.HUMAN for a in _attempts(h, cid))
    assert h.semaphore.snapshot() == {}
    h.act(cid, CampaignAction.START)
    h.run_until_done(cid)
    assert len(_attempts(h, cid)) == 6


def test_stop_cancels_the_unreached_and_in_flight_calls_finish(engine: Engine) -> None:
    h = Harness(engine, sim=profile(human=0.0, busy=1.0))
    cid = h.campaign(numbers(5), max_concurrency=2)
    h.act(cid, CampaignAction.START)
    h.step()
    h.act(cid, CampaignAction.STOP)
    for _ in range(30):
        h.step()
    recipients = _recipients(h, cid)
    assert all(r.status is RecipientStatus.CANCELED for r in recipients), [
        r.status for r in recipients
    ]
    assert {r.reason for r in recipients} == {"campaign-stopped"}
    with h.session() as session:
        from dialer.db.models import Campaign

        campaign = session.get_one(Campaign, cid)
        assert campaign.status is CampaignStatus.COMPLETED
        assert campaign.ended_reason.value == "campaign.in-progress.ended-by-user"  # type: ignore[union-attr]
    assert h.counts(cid) == h.truth(cid)
    assert h.semaphore.snapshot() == {}


def test_lowering_max_concurrency_admits_nothing_until_below(engine: Engine) -> None:
    h = Harness(engine)
    cid = h.campaign(numbers(10), max_concurrency=4)
    h.act(cid, CampaignAction.START)
    h.step()
    assert len(_attempts(h, cid)) == 4
    with h.session() as session, session.begin():
        from dialer.db.models import Campaign

        session.get_one(Campaign, cid).max_concurrency = 1
    h.peak.clear()
    h.run_until_done(cid)
    live_counts = []
    attempts = _attempts(h, cid)
    for a in attempts[4:]:
        live = [
            b
            for b in attempts
            if b.dialed_at
            and b.dialed_at <= a.dialed_at < (b.ended_at or a.dialed_at + timedelta(days=1))
        ]  # type: ignore[operator]
        live_counts.append(len(live))
    assert max(live_counts) == 1


def test_suppressed_before_dialing_is_never_called(engine: Engine) -> None:
    h = Harness(engine)
    cid = h.campaign(numbers(2), max_concurrency=2)
    h.act(cid, CampaignAction.START)
    h.runtime.dispatcher.tick(h.clock.now)  # both queued
    with h.session() as session, session.begin():
        from dialer.db.models import Campaign
        from dialer.services import suppression

        tenant_id = session.get_one(Campaign, cid).tenant_id
        suppression.add(session, tenant_id, numbers(1)[0], None, source="api", now=h.clock.now)
    h.run_until_done(cid)
    recipients = _recipients(h, cid)
    assert [r.status for r in recipients] == [RecipientStatus.SUPPRESSED, RecipientStatus.DONE]
    called = {c.to for c in h.simulator._calls.values()}
    assert numbers(1)[0] not in called
    assert h.counts(cid) == h.truth(cid)


def test_a_number_suppressed_before_its_claim_gets_no_attempt_in_that_tenant_only(
    engine: Engine,
) -> None:
    from dialer.db.models import Campaign
    from dialer.services import suppression

    h = Harness(engine)
    mine = h.campaign(numbers(2), max_concurrency=2)
    theirs = h.campaign(numbers(2), user="other", max_concurrency=2)
    with h.session() as session, session.begin():
        tenant_id = session.get_one(Campaign, mine).tenant_id
        suppression.add(session, tenant_id, numbers(1)[0], None, source="api", now=h.clock.now)
    h.act(mine, CampaignAction.START)
    h.act(theirs, CampaignAction.START)
    h.runtime.dispatcher.tick(h.clock.now)
    assert [a.to_number for a in _attempts(h, mine)] == [numbers(2)[1]]
    assert len(_attempts(h, theirs)) == 2, "another tenant's list does not apply"
    h.run_until_done(mine)
    h.run_until_done(theirs)
    assert [r.status for r in _recipients(h, mine)] == [
        RecipientStatus.SUPPRESSED,
        RecipientStatus.DONE,
    ]
    assert [r.status for r in _recipients(h, theirs)] == [RecipientStatus.DONE] * 2
    assert h.counts(mine) == h.truth(mine)
    assert h.counts(theirs) == h.truth(theirs)


def test_schedule_end_closes_the_window(engine: Engine) -> None:
    h = Harness(engine, sim=profile(human=0.0, no_answer=1.0))
    end = h.clock.now + timedelta(minutes=2)
    cid = h.campaign(numbers(6), max_concurrency=2, schedule_end_time=end)
    h.act(cid, CampaignAction.START)
    h.run_until_done(cid, seconds=5)
    with h.session() as session:
        from dialer.db.models import Campaign

        campaign = session.get_one(Campaign, cid)
        assert campaign.ended_reason.value == "campaign.ended.window-closed"  # type: ignore[union-attr]
    for _ in range(20):  # calls in flight when the window closed finish
        h.step(5)
    recipients = _recipients(h, cid)
    assert all(r.status is RecipientStatus.SKIPPED for r in recipients), [
        (r.status, r.reason) for r in recipients
    ]
    assert {r.reason for r in recipients} <= {"window-closed", "no-window-left"}
    assert h.semaphore.snapshot() == {}
    assert all(a.dialed_at is None or a.dialed_at < end for a in _attempts(h, cid))
    assert h.counts(cid) == h.truth(cid)


def test_recipient_outside_legal_hours_waits_for_them(engine: Engine) -> None:
    h = Harness(engine)
    cid = h.campaign([], max_concurrency=2)
    from tests.flow.harness import _Row

    with h.session() as session, session.begin():
        from dialer.db.models import Campaign
        from dialer.services.recipients import add_batch

        campaign = session.get_one(Campaign, cid)
        add_batch(
            session,
            campaign,
            [_Row("+81312345678", time_zone=None), _Row("+12125551000")],
            now=h.clock.now,
        )
    h.act(cid, CampaignAction.START)
    for _ in range(60):
        h.step()
    tokyo = next(r for r in _recipients(h, cid) if r.phone_number == "+81312345678")
    assert tokyo.status is RecipientStatus.PENDING
    # 17:00 UTC is 02:00 in Tokyo; legal hours open at 08:00 there, 23:00 UTC.
    assert tokyo.next_attempt_at.isoformat() == "2026-11-23T23:00:00+00:00"
    assert all(a.to_number != "+81312345678" for a in _attempts(h, cid))


def test_a_formatted_caller_number_is_stored_and_dialed_as_e164(engine: Engine) -> None:
    """``+1 (415) 555-0100`` as written would be refused by the provider (21212) each call."""
    h = Harness(engine)
    cid = h.campaign(["+12125551000"], phone_number_id="+1 (415) 555-0100", caller_id_number=None)
    with h.session() as session:
        assert session.get_one(Campaign, cid).phone_number_id == "+14155550100"
    h.act(cid, CampaignAction.START)
    h.step()
    (attempt,) = _attempts(h, cid)
    assert attempt.from_number == "+14155550100"
    assert attempt.provider_call_id is not None, "the provider took the call"


def test_provider_refusal_fails_the_attempt_and_frees_the_slot(engine: Engine) -> None:
    h = Harness(engine)
    cid = h.campaign(["+12125551000"], max_concurrency=1, caller_id_number="+14155550100")
    h.act(cid, CampaignAction.START)
    from dialer.errors import TerminalProviderError

    real = h.simulator.place_call
    calls = {"n": 0}

    def refuse_first(request):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise TerminalProviderError("invalid 'To' number", code="21211", status=400)
        return real(request)

    h.simulator.place_call = refuse_first  # type: ignore[method-assign]
    h.step()
    first = _attempts(h, cid)[0]
    assert first.outcome is Outcome.FAILED
    assert first.error_code == "21211"
    assert h.semaphore.snapshot() == {}
    h.run_until_done(cid, seconds=5)
    assert [a.outcome for a in _attempts(h, cid)] == [Outcome.FAILED, Outcome.HUMAN]


def test_outbox_resends_what_a_crash_left_unsent(engine: Engine) -> None:
    h = Harness(engine)
    cid = h.campaign(numbers(3), max_concurrency=3)
    h.act(cid, CampaignAction.START)
    lost: list[int] = []
    dispatcher = h.runtime.dispatcher

    def die(attempt_ids: Sequence[int]) -> None:
        lost.extend(attempt_ids)
        raise _Died  # the process dies after the claim's commit, before sending its tasks

    dispatcher.after_commit = die
    with pytest.raises(_Died):
        dispatcher.tick(h.clock.now)
    dispatcher.after_commit = None
    assert len(lost) == 3
    assert not h.queue.dials
    assert dispatcher.recover_outbox(h.clock.now) == [], "not before the timeout"
    h.clock.advance(dispatcher.config.outbox_timeout_s + 1)
    assert sorted(dispatcher.recover_outbox(h.clock.now)) == sorted(lost)
    h.run_until_done(cid)
    assert len(_attempts(h, cid)) == 3
    assert len(h.simulator._calls) == 3


class _Died(Exception):
    pass


def test_a_busy_provider_backs_off_then_fails_the_attempt_after_too_many_refusals(
    engine: Engine,
) -> None:
    from dialer.calls.states import MAX_PROVIDER_RETRIES
    from dialer.errors import RetryableProviderError

    h = Harness(engine)
    cid = h.campaign(numbers(1), max_concurrency=1, retry_policy={"max_attempts": 1})
    h.act(cid, CampaignAction.START)

    def busy(request):  # type: ignore[no-untyped-def]
        raise RetryableProviderError("Too Many Requests", code="20429", status=429)

    h.simulator.place_call = busy  # type: ignore[method-assign]
    h.runtime.dispatcher.tick(h.clock.now)
    countdowns = []
    for refusal in range(1, MAX_PROVIDER_RETRIES + 1):
        [(due, attempt_id)] = h.queue.dials
        h.queue.dials.clear()
        h.clock.now = due
        assert h.runtime.run_dial(attempt_id).result is DialResult.PROVIDER_BUSY
        [(again, _)] = h.queue.dials
        countdowns.append((again - h.clock.now).total_seconds())
        [attempt] = _attempts(h, cid)
        assert (attempt.status, attempt.provider_retries) == (AttemptStatus.QUEUED, refusal)
    backoff_s = h.runtime.calls.provider_backoff_s
    assert countdowns == [backoff_s * n for n in range(1, MAX_PROVIDER_RETRIES + 1)]

    [(due, attempt_id)] = h.queue.dials
    h.queue.dials.clear()
    h.clock.now = due
    assert h.runtime.run_dial(attempt_id).result is DialResult.REFUSED

    [attempt] = _attempts(h, cid)
    assert (attempt.outcome, attempt.error_code) == (Outcome.FAILED, "20429")
    assert [r.status for r in _recipients(h, cid)] == [RecipientStatus.EXHAUSTED]
    assert h.semaphore.snapshot() == {}
    assert h.counts(cid) == h.truth(cid)
