"""The provider port's outbound contract, run against every adapter (the inbound one, events
in, is ``test_inbound_contract``).

``simulator``: the in-process simulator on an injected clock. ``twilio``: the Twilio adapter
against the carrier simulator on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from dialer.errors import TerminalProviderError
from dialer.policy.attempt_state import Outcome
from dialer.telephony.base import CallStatus, PlacedCall
from dialer.telephony.simulator import SimulatedProvider
from dialer.telephony.simulator.plan import SimulationProfile
from tests.carrier.fixtures import StartCarrier
from tests.carrier.support import Receiver, only
from tests.telephony.harness import (
    CarrierHarness,
    FakeClock,
    Harness,
    RecordingSink,
    SimulatorHarness,
)

MakeHarness = Callable[[SimulationProfile], Harness]


@pytest.fixture(params=["simulator", "twilio"])
def make_harness(request: pytest.FixtureRequest) -> MakeHarness:
    if request.param == "simulator":

        def simulator(profile: SimulationProfile) -> Harness:
            clock, sink = FakeClock(), RecordingSink()
            provider = SimulatedProvider(sink, profile=profile, seed=3, clock=clock)
            return SimulatorHarness(provider, clock, sink)

        return simulator
    start_carrier: StartCarrier = request.getfixturevalue("start_carrier")
    receiver: Receiver = request.getfixturevalue("receiver")
    return lambda profile: CarrierHarness(start_carrier(profile=profile), receiver)


def _ended(harness: Harness, placed: PlacedCall) -> Callable[[], bool]:
    return lambda: harness.provider.fetch(placed.provider_call_id).status.is_terminal


def _status_is(harness: Harness, placed: PlacedCall, status: CallStatus) -> Callable[[], bool]:
    return lambda: harness.provider.fetch(placed.provider_call_id).status is status


def test_a_placed_call_plays_out_and_is_reported(make_harness: MakeHarness) -> None:
    harness = make_harness(only("human", ring_s=2, talk_s=5))
    request = harness.request()
    placed = harness.provider.place_call(request)
    assert placed.status is CallStatus.QUEUED
    assert placed.provider_call_id.startswith("CA")

    harness.settle(_ended(harness, placed))
    # Four statuses, the AMD verdict, and the assistant's stream starting.
    harness.settle(lambda: len(harness.events(request.attempt_id)) == 6)
    info = harness.provider.fetch(placed.provider_call_id)
    assert info.provider_call_id == placed.provider_call_id
    assert (info.to, info.from_) == (request.to, request.from_)
    assert (info.status, info.answered_by, info.duration_s) == (CallStatus.COMPLETED, "human", 5)
    assert info.created_at is not None
    assert info.started_at is not None
    assert info.ended_at is not None
    assert info.ended_at >= info.started_at

    events = harness.events(request.attempt_id)
    assert {e.provider_call_id for e in events} == {placed.provider_call_id}
    statuses = sorted(
        (e for e in events if e.kind == "status"), key=lambda e: e.sequence_number or 0
    )
    assert [(e.sequence_number, e.call_status) for e in statuses] == [
        (0, CallStatus.INITIATED),
        (1, CallStatus.RINGING),
        (2, CallStatus.IN_PROGRESS),
        (3, CallStatus.COMPLETED),
    ]
    assert statuses[-1].duration_s == 5
    assert statuses[-1].outcome is Outcome.HUMAN
    assert [e.answered_by for e in events if e.kind == "amd"] == ["human"]
    assert [e.stream_event for e in events if e.kind == "stream"] == ["stream-started"]


@pytest.mark.parametrize(
    ("outcome", "status", "answered_by"),
    [
        ("voicemail", CallStatus.COMPLETED, "machine_end_"),
        ("busy", CallStatus.BUSY, None),
        ("no_answer", CallStatus.NO_ANSWER, None),
        ("failed", CallStatus.FAILED, None),
    ],
)
def test_each_outcome_ends_with_its_status(
    make_harness: MakeHarness, outcome: str, status: CallStatus, answered_by: str | None
) -> None:
    harness = make_harness(only(outcome))
    placed = harness.provider.place_call(harness.request())
    harness.settle(_ended(harness, placed))
    info = harness.provider.fetch(placed.provider_call_id)
    assert info.status is status
    if answered_by is None:
        assert info.answered_by is None
    else:
        assert info.answered_by is not None
        assert info.answered_by.startswith(answered_by)


def test_hang_up_ends_an_answered_call(make_harness: MakeHarness) -> None:
    harness = make_harness(only("human", talk_s=100_000))
    request = harness.request()
    placed = harness.provider.place_call(request)
    harness.settle(_status_is(harness, placed, CallStatus.IN_PROGRESS))
    answer = harness.provider.hang_up(placed.provider_call_id)
    # The answer is the call's record, ended: what its end is, without waiting for a callback.
    assert answer is not None
    assert (answer.provider_call_id, answer.status) == (
        placed.provider_call_id,
        CallStatus.COMPLETED,
    )
    assert answer.ended_at is not None
    assert answer.duration_s is not None
    assert harness.provider.fetch(placed.provider_call_id).status is CallStatus.COMPLETED
    harness.settle(
        lambda: any(
            e.call_status is CallStatus.COMPLETED for e in harness.events(request.attempt_id)
        )
    )
    harness.provider.hang_up(placed.provider_call_id)  # again: a no-op
    assert harness.provider.fetch(placed.provider_call_id).status is CallStatus.COMPLETED


def test_hang_up_cancels_a_ringing_call(make_harness: MakeHarness) -> None:
    harness = make_harness(only("human", ring_s=100_000))
    request = harness.request(ring_timeout_s=600)
    placed = harness.provider.place_call(request)
    harness.settle(_status_is(harness, placed, CallStatus.RINGING))
    answer = harness.provider.hang_up(placed.provider_call_id)
    assert answer is not None
    assert answer.status is CallStatus.CANCELED
    harness.settle(
        lambda: any(
            e.call_status is CallStatus.CANCELED for e in harness.events(request.attempt_id)
        )
    )
    info = harness.provider.fetch(placed.provider_call_id)
    assert (info.status, info.answered_by) == (CallStatus.CANCELED, None)


def test_live_calls_lists_the_calls_still_up_and_none_that_ended(
    make_harness: MakeHarness,
) -> None:
    harness = make_harness(only("human", ring_s=2, talk_s=100_000))
    ringing = harness.provider.place_call(harness.request(to="+15551230001"))
    talking = harness.provider.place_call(harness.request(to="+15551230002"))
    ended = harness.provider.place_call(harness.request(to="+15551230003"))
    harness.settle(_status_is(harness, ended, CallStatus.IN_PROGRESS))
    harness.settle(_status_is(harness, talking, CallStatus.IN_PROGRESS))
    harness.provider.hang_up(ended.provider_call_id)
    harness.settle(_status_is(harness, ringing, CallStatus.IN_PROGRESS))

    live = harness.provider.live_calls()
    mine = {ringing.provider_call_id, talking.provider_call_id, ended.provider_call_id}
    assert live.ids & mine == {ringing.provider_call_id, talking.provider_call_id}
    assert live.requests >= 1


def test_find_calls_reconciles_by_numbers_and_time(make_harness: MakeHarness) -> None:
    harness = make_harness(only("human"))
    since = harness.now() - timedelta(minutes=1)
    mine = harness.provider.place_call(harness.request(to="+15557770001"))
    harness.provider.place_call(harness.request(to="+15557770002"))  # another recipient
    harness.provider.place_call(harness.request(to="+15557770001", from_="+15550000009"))

    found = harness.provider.find_calls("+15557770001", "+15550000001", since)
    assert [info.provider_call_id for info in found] == [mine.provider_call_id]
    # Found whether it is still queued or has started.
    harness.settle(_ended(harness, mine))
    found = harness.provider.find_calls("+15557770001", "+15550000001", since)
    assert [info.provider_call_id for info in found] == [mine.provider_call_id]
    assert (
        harness.provider.find_calls(
            "+15557770001", "+15550000001", harness.now() + timedelta(hours=1)
        )
        == []
    )


def test_unknown_call_is_a_terminal_error(make_harness: MakeHarness) -> None:
    harness = make_harness(only("human"))
    missing = "CA" + "f" * 32
    with pytest.raises(TerminalProviderError) as caught:
        harness.provider.fetch(missing)
    assert caught.value.code == "20404"
    with pytest.raises(TerminalProviderError):
        harness.provider.hang_up(missing)


def test_invalid_number_is_a_terminal_error_with_twilios_code(make_harness: MakeHarness) -> None:
    harness = make_harness(only("human"))
    with pytest.raises(TerminalProviderError) as caught:
        harness.provider.place_call(harness.request(to="not-a-number"))
    assert (caught.value.code, caught.value.status) == ("21211", 400)
