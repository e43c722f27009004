"""Lost callbacks: the provider's record is the truth, and the sweep learns it cheaply."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.calls.sweep import QUIET_S
from dialer.db.models import CallAttempt
from dialer.policy.attempt_state import AttemptStatus, Outcome
from dialer.policy.campaign_state import CampaignAction, CampaignStatus
from dialer.telephony.base import CallInfo, LiveCalls
from dialer.telephony.simulator import SimulatedProvider
from tests.flow.harness import EventBuffer, Harness, numbers, profile

SWEEP_S = 30.0


class Counting:
    """The simulator, counting what the sweep asks of it."""

    def __init__(self, inner: SimulatedProvider) -> None:
        self.inner = inner
        self.fetches = 0
        self.lists = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def fetch(self, provider_call_id: str) -> CallInfo:
        self.fetches += 1
        return self.inner.fetch(provider_call_id)

    def live_calls(self) -> LiveCalls:
        self.lists += 1
        return self.inner.live_calls()


def _harness(engine: Engine, lose_ended_p: float, **weights: float) -> tuple[Harness, Counting]:
    sink = EventBuffer()
    clock_holder: list[Harness] = []
    simulator = SimulatedProvider(
        sink,
        profile=profile(**weights),
        seed=7,
        clock=lambda: clock_holder[0].clock.now,
        lose_ended_p=lose_ended_p,
    )
    counting = Counting(simulator)
    h = Harness(engine, provider=counting)
    h.sink = sink
    clock_holder.append(h)
    return h, counting


def _live(h: Harness) -> dict[int, str]:
    with h.sessions() as session:
        rows = session.execute(
            sa.select(CallAttempt.id, CallAttempt.provider_call_id).where(
                CallAttempt.status != AttemptStatus.ENDED,
                CallAttempt.provider_call_id.is_not(None),
            )
        )
        return {attempt_id: str(call_id) for attempt_id, call_id in rows}


def test_lost_terminal_callbacks_free_their_slots_within_one_sweep_period(
    engine: Engine,
) -> None:
    """Every call's end is lost: the campaign still completes, each slot comes back within
    the sweep period (plus the quiet time), and the limit is never exceeded."""
    h, provider = _harness(engine, lose_ended_p=1.0, human=1.0, busy=1.0, no_answer=1.0)
    campaign_id = h.campaign(numbers(12), max_concurrency=3)
    h.act(campaign_id, CampaignAction.START)
    ended_at_provider: dict[int, float] = {}  # attempt -> when the provider ended its call
    longest_unheard_s = 0.0
    last_sweep = h.clock.seconds()
    for _ in range(2_000):
        h.step(1.0)
        if h.clock.seconds() - last_sweep >= SWEEP_S:
            last_sweep = h.clock.seconds()
            h.runtime.sweep(h.clock.now)
            h.run_tasks()
        live = _live(h)
        for attempt_id, call_id in live.items():
            if provider.inner.fetch(call_id).status.is_terminal:
                ended_at_provider.setdefault(attempt_id, h.clock.seconds())
        for attempt_id, at in ended_at_provider.items():
            if attempt_id in live:
                longest_unheard_s = max(longest_unheard_s, h.clock.seconds() - at)
        if h.status(campaign_id) is CampaignStatus.COMPLETED:
            break
    assert h.status(campaign_id) is CampaignStatus.COMPLETED, h.counts(campaign_id)
    assert provider.inner.lost_ended > 0
    assert len(ended_at_provider) == provider.inner.lost_ended  # every end was learned
    assert longest_unheard_s <= SWEEP_S + QUIET_S + 1.0
    assert h.peak_of(campaign_id) <= 3
    assert h.counts(campaign_id) == h.truth(campaign_id)
    with h.sessions() as session:
        outcomes = set(session.scalars(sa.select(CallAttempt.outcome)))
    # Learned from the provider's record, as the callback would have said.
    assert {Outcome.HUMAN, Outcome.BUSY, Outcome.NO_ANSWER} <= outcomes


def test_a_sweep_fetches_nothing_while_the_provider_lists_our_calls_as_live(
    engine: Engine,
) -> None:
    h, provider = _harness(engine, lose_ended_p=0.0, human=1.0)
    campaign_id = h.campaign(numbers(3), max_concurrency=3)
    h.act(campaign_id, CampaignAction.START)
    for _ in range(15):  # calls answered (talk time 30 s), quiet for a while
        h.step(1.0)
    assert len(_live(h)) == 3

    report = h.runtime.sweep(h.clock.now)
    assert (report.quiet, report.fetched, report.requests) == (3, 0, 1)
    assert (provider.lists, provider.fetches) == (1, 0)
    assert report.ended == []


def test_a_sweep_asks_nothing_when_no_call_is_in_flight(engine: Engine) -> None:
    h, provider = _harness(engine, lose_ended_p=0.0)
    report = h.runtime.sweep(h.clock.now)
    assert (report.quiet, report.requests) == (0, 0)
    assert provider.lists == 0


def test_a_machine_hung_up_on_ends_from_the_hang_ups_answer(engine: Engine) -> None:
    """No voicemail message to leave: the dialer hangs up on the machine, and the provider's
    answer ends the attempt at once, even though the call's last callback is lost."""
    h, provider = _harness(engine, lose_ended_p=1.0, human=0.0, voicemail=1.0)
    campaign_id = h.campaign(numbers(1), max_concurrency=1)
    h.act(campaign_id, CampaignAction.START)
    for _ in range(20):
        h.step(1.0)
        if not _live(h) and h.dial_results:
            break
    with h.sessions() as session:
        attempt = session.scalars(sa.select(CallAttempt)).one()
        assert attempt.status is AttemptStatus.ENDED
        assert attempt.outcome is Outcome.VOICEMAIL
        assert attempt.answered_by is not None
        assert attempt.answered_by.startswith("machine")
    assert provider.fetches == 0  # no sweep, no lookup: the answer said it all
    assert h.stores.slots.in_use(campaign_id) == 0
