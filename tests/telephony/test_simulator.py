from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta

import pytest

from dialer.errors import TerminalProviderError
from dialer.policy.attempt_state import Outcome
from dialer.telephony.base import CallStatus
from dialer.telephony.events import ProviderEvent, outcome_for
from dialer.telephony.simulator import SimulatedProvider
from dialer.telephony.simulator.distributions import Exponential, Uniform
from dialer.telephony.simulator.plan import OutcomeWeights, SimulationProfile
from tests.carrier.support import only, wait_until
from tests.telephony.harness import FakeClock, RecordingSink, SimulatorHarness


def _simulator(
    profile: SimulationProfile | None = None, seed: int | None = 7
) -> tuple[SimulatedProvider, SimulatorHarness, RecordingSink]:
    clock, sink = FakeClock(), RecordingSink()
    provider = SimulatedProvider(sink, profile=profile, seed=seed, clock=clock)
    return provider, SimulatorHarness(provider, clock, sink), sink


def _final_outcome(events: list[ProviderEvent]) -> Outcome | None:
    """What ingestion would conclude: the last status, read with the AMD verdict."""
    verdict = next((e.answered_by for e in events if e.kind == "amd"), None)
    last = max((e for e in events if e.kind == "status"), key=lambda e: e.sequence_number or 0)
    assert last.call_status is not None
    return outcome_for(last.call_status, verdict)


def _run_calls(harness: SimulatorHarness, sink: RecordingSink, count: int) -> list[Outcome | None]:
    for _ in range(count):
        harness.provider.place_call(harness.request())
    harness.drain()
    by_attempt: dict[str, list[ProviderEvent]] = defaultdict(list)
    for attempt_id, event in sink.deliveries:
        by_attempt[attempt_id].append(event)
    assert len(by_attempt) == count
    return [_final_outcome(events) for events in by_attempt.values()]


def test_nothing_happens_until_time_is_driven() -> None:
    provider, harness, sink = _simulator()
    placed = provider.place_call(harness.request())
    assert placed.status is CallStatus.QUEUED
    assert sink.deliveries == []
    assert provider.run_due() == 1  # initiated is due at once
    assert [e.call_status for _, e in sink.deliveries] == [CallStatus.INITIATED]


def test_same_seed_same_calls() -> None:
    profile = SimulationProfile(ring_s=Uniform(1, 9), talk_s=Exponential(30))

    def run(seed: int) -> list[tuple[object, ...]]:
        _, harness, sink = _simulator(profile, seed)
        _run_calls(harness, sink, 30)
        return [
            (attempt, e.kind, e.call_status, e.duration_s, e.answered_by)
            for attempt, e in sink.deliveries
        ]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_outcome_mix_follows_the_weights() -> None:
    weights = OutcomeWeights(human=4, voicemail=3, busy=1, no_answer=1, failed=1)
    _, harness, sink = _simulator(SimulationProfile(weights=weights), seed=11)
    calls = 2000
    counts = Counter(_run_calls(harness, sink, calls))
    for outcome in (
        Outcome.HUMAN,
        Outcome.VOICEMAIL,
        Outcome.BUSY,
        Outcome.NO_ANSWER,
        Outcome.FAILED,
    ):
        assert counts[outcome] / calls == pytest.approx(weights.share(outcome), abs=0.035)


def test_status_callbacks_come_in_order_with_increasing_sequence_numbers() -> None:
    provider, harness, sink = _simulator(only("voicemail"))
    request = harness.request()
    placed = provider.place_call(request)
    harness.settle(lambda: provider.fetch(placed.provider_call_id).status.is_terminal)
    statuses = [e for e in harness.events(request.attempt_id) if e.kind == "status"]
    assert [e.sequence_number for e in statuses] == [0, 1, 2, 3]
    assert [e.call_status for e in statuses] == [
        CallStatus.INITIATED,
        CallStatus.RINGING,
        CallStatus.IN_PROGRESS,
        CallStatus.COMPLETED,
    ]
    timestamps = [e.timestamp for e in statuses if e.timestamp is not None]
    assert len(timestamps) == 4
    assert timestamps == sorted(timestamps)
    assert all(e.provider_call_id == placed.provider_call_id for _, e in sink.deliveries)
    assert _final_outcome(harness.events(request.attempt_id)) is Outcome.VOICEMAIL
    info = provider.fetch(placed.provider_call_id)
    assert info.answered_by is not None
    assert info.answered_by.startswith("machine_end")
    assert info.duration_s == 3 + 4  # greeting, then the message


def test_hang_up_while_queued_is_silent() -> None:
    """Twilio sends no callback at all for a call canceled while still queued."""
    provider, harness, sink = _simulator(only("human"))
    placed = provider.place_call(harness.request())
    provider.hang_up(placed.provider_call_id)
    assert provider.fetch(placed.provider_call_id).status is CallStatus.CANCELED
    harness.drain()
    assert sink.deliveries == []


def test_hang_up_of_an_answered_call_reports_talk_so_far() -> None:
    provider, harness, _ = _simulator(only("human", talk_s=600))
    request = harness.request()
    placed = provider.place_call(request)
    sid = placed.provider_call_id
    harness.settle(lambda: provider.fetch(sid).status is CallStatus.IN_PROGRESS)
    harness.clock.now += timedelta(seconds=12.5)
    provider.hang_up(sid)
    provider.run_due()
    info = provider.fetch(sid)
    assert (info.status, info.duration_s) == (CallStatus.COMPLETED, 13)
    last = harness.events(request.attempt_id)[-1]
    assert (last.call_status, last.duration_s) == (CallStatus.COMPLETED, 13)
    assert provider.next_due_at() is None  # the planned end will never be reported


def test_unknown_and_invalid_calls_are_terminal_errors() -> None:
    provider, harness, _ = _simulator()
    with pytest.raises(TerminalProviderError) as caught:
        provider.fetch("CA-nope")
    assert caught.value.code == "20404"
    with pytest.raises(TerminalProviderError) as caught:
        provider.place_call(harness.request(to="12345"))
    assert (caught.value.code, caught.value.status) == ("21211", 400)


def test_realtime_mode_delivers_on_its_own_thread() -> None:
    sink = RecordingSink()
    with SimulatedProvider.realtime(
        sink, profile=only("busy"), seed=1, time_scale=0.001
    ) as provider:
        request = SimulatorHarness(provider, FakeClock(), sink).request()
        placed = provider.place_call(request)
        wait_until(lambda: len(sink.events(request.attempt_id)) == 2)
        assert provider.fetch(placed.provider_call_id).status is CallStatus.BUSY
        assert [e.call_status for e in sink.events(request.attempt_id)] == [
            CallStatus.INITIATED,
            CallStatus.BUSY,
        ]
    assert provider._thread is not None
    assert not provider._thread.is_alive()
