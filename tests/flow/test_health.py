"""Campaigns that pause themselves and caller numbers that are quarantined, on the simulator:
abandoned calls (the assistant's stream late or never), numbers carriers refuse with SIP 608,
campaigns whose dials all fail at the carrier."""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.api import views
from dialer.calls import health
from dialer.db.models import CallAttempt, Campaign, PhoneNumber, Recipient
from dialer.db.models.health import CAMPAIGN_SCOPE
from dialer.policy.attempt_state import AttemptStatus, Outcome, RecipientStatus
from dialer.policy.campaign_state import CampaignAction, CampaignStatus, PausedReason
from dialer.policy.health import NumberProblem
from dialer.services import history, phone_numbers
from dialer.telephony.simulator.distributions import Fixed
from tests.flow.harness import Harness, numbers, profile
from tests.flow.test_ingestion import SilentProvider

#: Judged after 5 calls answered by a person, so a test needs only a few calls.
SMALL_SAMPLES: dict[str, Any] = {
    "abandon_min_human_calls": 5,
    "number_reject_min_dials": 5,
    "failure_pause_dials": 5,
}
NUMBER_A, NUMBER_B = "+14155550171", "+14155550172"


def _steps_until(h: Harness, done: Any, max_steps: int = 600) -> None:
    for _ in range(max_steps):
        h.step()
        if done():
            return
    raise AssertionError("condition not met")


def _campaign(h: Harness, cid: str) -> Campaign:
    with h.session() as session:
        campaign = session.get_one(Campaign, cid)
        session.expunge(campaign)
        return campaign


def _attempts(h: Harness, cid: str) -> list[CallAttempt]:
    with h.session() as session:
        rows = list(
            session.scalars(
                sa.select(CallAttempt)
                .where(CallAttempt.campaign_id == cid)
                .order_by(CallAttempt.id)
            )
        )
        session.expunge_all()
        return rows


def _settle_in_flight(h: Harness, cid: str) -> None:
    """Let the calls in flight end (a pause leaves them to)."""
    _steps_until(h, lambda: all(a.status is AttemptStatus.ENDED for a in _attempts(h, cid)))


def test_a_campaign_whose_assistant_connects_late_pauses_at_its_abandon_limit(
    engine: Engine,
) -> None:
    slow = dataclasses.replace(profile(), stream_s=Fixed(3.0))  # answered, then 3 s of silence
    h = Harness(engine, sim=slow, settings=SMALL_SAMPLES)
    cid = h.campaign(numbers(30), max_concurrency=2, retry_policy={"max_attempts": 1})
    h.act(cid, CampaignAction.START)

    _steps_until(h, lambda: h.status(cid) is CampaignStatus.PAUSED)
    campaign = _campaign(h, cid)
    assert campaign.paused_reason == PausedReason.ABANDON_RATE.value
    with h.session() as session:
        [entry] = history.page(
            session, campaign.tenant_id, cid, newest_first=True, after_id=None, limit=1
        )
    assert (entry.actor, entry.kind) == ("system", "action")
    assert entry.details == {
        "action": "pause",
        "from": "running",
        "to": "paused",
        "paused_reason": PausedReason.ABANDON_RATE.value,
    }
    _settle_in_flight(h, cid)
    attempts = _attempts(h, cid)
    # Paused by the fifth abandoned call; the calls in flight then finished, no more began.
    assert 5 <= len(attempts) <= 5 + 2
    assert all(a.abandoned is True and a.outcome is Outcome.HUMAN for a in attempts)
    assert all(a.stream_started_at is not None for a in attempts), "late, not never"
    for _ in range(20):
        h.step()
    assert len(_attempts(h, cid)) == len(attempts), "a paused campaign places no call"
    assert h.counts(cid) == h.truth(cid)
    assert h.semaphore.snapshot() == {}
    with h.session() as session:
        counts = views.campaign(session, session.get_one(Campaign, cid), h.clock.now).counts
    assert (counts.human_answered_30d, counts.abandoned_30d) == (len(attempts), len(attempts))
    assert counts.abandon_rate_30d == 1.0

    # Started again by the operator: it calls again, and pauses again at the next abandoned
    # call (still over its limit), not before.
    h.act(cid, CampaignAction.START)
    assert _campaign(h, cid).paused_reason is None
    _steps_until(h, lambda: h.status(cid) is CampaignStatus.PAUSED)
    assert _campaign(h, cid).paused_reason == PausedReason.ABANDON_RATE.value
    assert len(_attempts(h, cid)) > len(attempts)


def test_a_stream_that_never_starts_is_abandoned_and_a_prompt_one_is_not(
    engine: Engine,
) -> None:
    failing = dataclasses.replace(profile(), stream_failures=0.5)
    h = Harness(engine, sim=failing, seed=3)
    cid = h.campaign(numbers(12), max_concurrency=3, retry_policy={"max_attempts": 1})
    h.act(cid, CampaignAction.START)
    h.run_until_done(cid)
    attempts = _attempts(h, cid)
    never = [a for a in attempts if a.stream_started_at is None]
    prompt = [a for a in attempts if a.stream_started_at is not None]
    assert never, "some streams failed"
    assert prompt, "some streams started"
    assert all(a.abandoned is True for a in never)
    assert all(a.abandoned is False for a in prompt)
    with h.session() as session:
        tally = health.abandon_tally(session, cid, now=h.clock.now, days=30)
    assert (tally.humans, tally.abandoned) == (len(attempts), len(never))
    # Below the minimum sample (20 by default): judged on no rate, it ran to the end.
    assert _campaign(h, cid).paused_reason is None


def test_a_stream_start_reported_after_the_end_takes_the_verdict_back_once(
    engine: Engine,
) -> None:
    provider = SilentProvider()
    h = Harness(engine, provider=provider)
    cid = h.campaign(numbers(2), max_concurrency=2, retry_policy={"max_attempts": 1})
    h.act(cid, CampaignAction.START)
    h.step()
    prompt, late = _attempts(h, cid)
    for attempt in (prompt, late):
        sid = attempt.provider_call_id
        assert sid is not None
        h.callback(attempt.id, "status", _status(sid, "in-progress", 0, "17:01:00"))
        h.callback(attempt.id, "amd", {"CallSid": sid, "AnsweredBy": "human"})
        h.callback(attempt.id, "status", _status(sid, "completed", 1, "17:01:30"))
    assert [a.abandoned for a in _attempts(h, cid)] == [True, True], "no stream yet: abandoned"

    # The stream's reports arrive after the end, each twice: 1.5 s after the answer (in
    # time) and 2.5 s (late).
    for attempt, at in ((prompt, "17:01:01.500"), (late, "17:01:02.500")):
        for _ in range(2):
            h.callback(attempt.id, "stream", _stream(attempt, at))
    after = _attempts(h, cid)
    assert [a.abandoned for a in after] == [False, True]
    with h.session() as session:
        tally = health.abandon_tally(session, cid, now=h.clock.now, days=30)
    assert (tally.humans, tally.abandoned) == (2, 1), "taken back once, not twice"


def test_a_number_carriers_refuse_is_quarantined_and_its_recipients_move_to_the_other(
    engine: Engine,
) -> None:
    blocked = dataclasses.replace(profile(), blocked=frozenset({NUMBER_A}))
    settings = {**SMALL_SAMPLES, "failure_pause_dials": 100}
    h = Harness(engine, sim=blocked, settings=settings)
    cid = h.plan_campaign(
        [(NUMBER_A, numbers(10)), (NUMBER_B, numbers(10, start=2000))], max_concurrency=2
    )
    h.act(cid, CampaignAction.START)
    h.run_until_done(cid)

    with h.session() as session:
        a = session.scalars(sa.select(PhoneNumber).where(PhoneNumber.number == NUMBER_A)).one()
        b = session.scalars(sa.select(PhoneNumber).where(PhoneNumber.number == NUMBER_B)).one()
        recipients = list(session.scalars(sa.select(Recipient)))
        plan = views.campaign(session, session.get_one(Campaign, cid), h.clock.now).dial_plan
    assert a.quarantined_at is not None
    assert a.quarantine_reason == NumberProblem.REJECTIONS.value
    assert b.quarantined_at is None
    assert plan is not None
    assert {(e.phone_number_id, e.quarantined) for e in plan} == {
        (NUMBER_A, True),
        (NUMBER_B, False),
    }
    attempts = _attempts(h, cid)
    from_a = [x for x in attempts if x.from_number == NUMBER_A]
    # Quarantined at its fifth refusal; the calls already placed from it then ended too.
    assert 5 <= len(from_a) <= 5 + 2
    assert all(x.error_code == "sip-608" for x in from_a)
    first_after = max(x.id for x in from_a)
    assert all(x.from_number == NUMBER_B for x in attempts if x.id > first_after)
    # Every recipient of A was reached from B in the end (a refused dial is retried).
    assert {r.status for r in recipients} == {RecipientStatus.DONE}
    assert h.counts(cid) == h.truth(cid)
    assert h.semaphore.snapshot() == {}

    # Released by the operator: it is called from again, judged on its new dials only.
    with h.session() as session, session.begin():
        released = phone_numbers.release(session, a.tenant_id, a.id, now=h.clock.now)
        assert released.quarantined_at is None
        assert released.released_at == h.clock.now


def test_a_campaign_with_no_healthy_number_left_pauses_itself(engine: Engine) -> None:
    blocked = dataclasses.replace(profile(), blocked=frozenset({NUMBER_A}))
    settings = {**SMALL_SAMPLES, "failure_pause_dials": 100}
    h = Harness(engine, sim=blocked, settings=settings)
    cid = h.campaign(
        numbers(20), phone_number_id=NUMBER_A, caller_id_number=NUMBER_A, max_concurrency=1
    )
    h.act(cid, CampaignAction.START)
    _steps_until(h, lambda: h.status(cid) is CampaignStatus.PAUSED)
    assert _campaign(h, cid).paused_reason == PausedReason.NO_HEALTHY_NUMBER.value
    assert len(_attempts(h, cid)) == 5
    assert h.counts(cid) == h.truth(cid)


def test_a_campaign_whose_dials_fail_at_the_carrier_pauses_itself(engine: Engine) -> None:
    h = Harness(engine, sim=profile(human=0.0, failed=1.0), settings=SMALL_SAMPLES)
    cid = h.campaign(numbers(20), max_concurrency=1, retry_policy={"max_attempts": 1})
    h.act(cid, CampaignAction.START)
    _steps_until(h, lambda: h.status(cid) is CampaignStatus.PAUSED)
    assert _campaign(h, cid).paused_reason == PausedReason.FAILURE_RATE.value
    _settle_in_flight(h, cid)
    attempts = _attempts(h, cid)
    assert len(attempts) == 5
    assert all(a.outcome is Outcome.FAILED for a in attempts)
    assert h.counts(cid) == h.truth(cid)
    assert h.semaphore.snapshot() == {}

    # Started again: the failures before the restart no longer count; five new ones do.
    h.act(cid, CampaignAction.START)
    h.step()
    assert h.status(cid) is CampaignStatus.RUNNING
    _steps_until(h, lambda: h.status(cid) is CampaignStatus.PAUSED)
    assert len(_attempts(h, cid)) == 10


def test_a_campaign_whose_calls_go_through_is_never_paused(engine: Engine) -> None:
    mixed = profile(human=1.0, voicemail=1.0, busy=1.0, no_answer=1.0)
    h = Harness(engine, sim=mixed, settings=SMALL_SAMPLES, seed=7)
    cid = h.campaign(numbers(20), max_concurrency=3, retry_policy={"max_attempts": 1})
    h.act(cid, CampaignAction.START)
    h.run_until_done(cid)
    campaign = _campaign(h, cid)
    assert campaign.paused_reason is None
    attempts = _attempts(h, cid)
    assert {a.abandoned for a in attempts if a.outcome is Outcome.HUMAN} == {False}
    assert {a.abandoned for a in attempts if a.outcome is not Outcome.HUMAN} == {None}
    with h.session() as session:
        phone = session.scalars(sa.select(PhoneNumber)).one()
        rows = session.execute(sa.text("SELECT scope, dials FROM health_tallies")).all()
    assert phone.quarantined_at is None
    assert sum(dials for scope, dials in rows if scope != CAMPAIGN_SCOPE) == len(attempts)


def _status(sid: str, status: str, sequence: int, at: str) -> dict[str, str]:
    return {
        "CallSid": sid,
        "CallStatus": status,
        "SequenceNumber": str(sequence),
        "Timestamp": f"2026-11-23T{at}+00:00",
        "CallDuration": "30",
    }


def _stream(attempt: CallAttempt, at: str) -> dict[str, str]:
    assert attempt.provider_call_id is not None
    return {
        "CallSid": attempt.provider_call_id,
        "StreamSid": "MZ" + "0" * 32,
        "StreamEvent": "stream-started",
        "Timestamp": f"2026-11-23T{at}Z",
    }


def test_a_number_nobody_answers_is_quarantined_for_its_answer_rate(engine: Engine) -> None:
    settings = {**SMALL_SAMPLES, "number_answer_min_dials": 6}
    h = Harness(engine, sim=profile(human=0.0, no_answer=1.0), settings=settings)
    cid = h.campaign(numbers(20), max_concurrency=1, retry_policy={"max_attempts": 1})
    h.act(cid, CampaignAction.START)
    _steps_until(h, lambda: h.status(cid) is CampaignStatus.PAUSED)
    assert _campaign(h, cid).paused_reason == PausedReason.NO_HEALTHY_NUMBER.value
    with h.session() as session:
        phone = session.scalars(sa.select(PhoneNumber)).one()
    assert phone.quarantine_reason == NumberProblem.LOW_ANSWER_RATE.value
    assert len(_attempts(h, cid)) == 6, "no-answers are not carrier failures: no earlier pause"


def test_an_opening_message_said_at_the_answer_keeps_a_late_stream_from_counting_abandoned(
    engine: Engine,
) -> None:
    """With the opt-out key on, the answer says the opening message inside its ``<Gather>``
    before the assistant's stream connects: the person hears the dialer at once, so a stream
    that starts after the message is no abandoned call, but one that never starts still is.
    A campaign without an opening message has nothing said first: 3 s of silence abandons."""
    slow = dataclasses.replace(profile(), stream_s=Fixed(3.0), stream_failures=0.5)
    greeting = {"assistant_stream_url": "wss://assistant.example/stream", "opt_out_digit": "9"}
    h = Harness(engine, sim=slow, settings=greeting, seed=3)
    greeted = h.campaign(
        numbers(10), max_concurrency=3, retry_policy={"max_attempts": 1},
        opening_message_template="Hello, this is Acme. Press 9 to stop our calls.",
    )  # fmt: skip
    silent = h.campaign(
        numbers(10, start=2000), max_concurrency=3, retry_policy={"max_attempts": 1}
    )
    for cid in (greeted, silent):
        h.act(cid, CampaignAction.START)
    for cid in (greeted, silent):
        h.run_until_done(cid)

    late = [a for a in _attempts(h, greeted) if a.stream_started_at is not None]
    never = [a for a in _attempts(h, greeted) if a.stream_started_at is None]
    assert late, "some streams started (3 s after the answer)"
    assert never, "some streams never started"
    assert all(a.abandoned is False for a in late)
    assert all(a.abandoned is True for a in never)
    assert all(a.abandoned is True for a in _attempts(h, silent))
