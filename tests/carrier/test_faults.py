"""Injected faults, as the dialer's webhook endpoint would observe them."""

from __future__ import annotations

import dataclasses
import time

import httpx
import pytest

from dialer.carrier import Faults, RunningCarrier
from dialer.telephony.base import CallRequest
from dialer.telephony.twilio.adapter import TwilioProvider
from tests.carrier.fixtures import StartCarrier
from tests.carrier.support import Receiver, only, wait_until


def _place(running: RunningCarrier, receiver: Receiver, request: CallRequest) -> str:
    provider = TwilioProvider(
        running.account_sid,
        running.auth_token,
        webhooks=receiver.webhooks,
        base_url=running.base_url,
    )
    return provider.place_call(request).provider_call_id


def _ended(running: RunningCarrier) -> bool:
    stats = running.stats()
    return bool(stats["live"]["total"] == 0 and stats["total_calls"] > 0)


def _statuses(receiver: Receiver, request: CallRequest) -> list[str]:
    return [r.params["SequenceNumber"] for r in receiver.received(request.attempt_id, "status")]


def test_duplicates_arrive_twice_with_the_same_signature(
    start_carrier: StartCarrier, receiver: Receiver
) -> None:
    running = start_carrier(profile=only("busy"), faults=Faults(duplicate_p=1.0))
    request = receiver.request()
    _place(running, receiver, request)
    wait_until(lambda: len(receiver.received(request.attempt_id, "status")) == 4)
    received = receiver.received(request.attempt_id, "status")
    assert _statuses(receiver, request) == ["0", "0", "1", "1"]
    assert received[0].params == received[1].params
    assert all(r.signature_ok for r in received)
    assert running.stats()["faults"]["duplicated"] == 2


def test_reordered_callbacks_arrive_after_the_next_one(
    start_carrier: StartCarrier, receiver: Receiver
) -> None:
    running = start_carrier(profile=only("no_answer"), faults=Faults(reorder_p=1.0))
    request = receiver.request()
    _place(running, receiver, request)
    wait_until(lambda: len(receiver.received(request.attempt_id, "status")) == 3)
    # initiated is held back behind ringing; no-answer, held too, goes when the call ends
    assert _statuses(receiver, request) == ["1", "0", "2"]
    assert running.stats()["faults"]["reordered"] == 2


def test_dropped_callbacks_never_arrive(start_carrier: StartCarrier, receiver: Receiver) -> None:
    running = start_carrier(profile=only("human"), faults=Faults(drop_p=1.0))
    request = receiver.request()
    sid = _place(running, receiver, request)
    wait_until(lambda: _ended(running))
    time.sleep(0.05)  # a callback already on its way would land by now
    assert receiver.received(request.attempt_id, "status") == []
    assert receiver.received(request.attempt_id, "amd") == []
    assert receiver.received(request.attempt_id, "stream") == []
    # 4 status, 1 AMD, and the stream's start (the answer's TwiML named its callback).
    assert running.stats()["faults"]["dropped"] == 6
    # The call itself went on: fetching it tells what no callback did.
    call = running.carrier.get(sid)
    assert call is not None
    assert call.sim.status.value == "completed"


def test_partial_faults_are_drawn_per_callback(
    start_carrier: StartCarrier, receiver: Receiver
) -> None:
    running = start_carrier(profile=only("busy"), faults=Faults(drop_p=0.5), seed=5)
    requests = [receiver.request() for _ in range(20)]
    for request in requests:
        _place(running, receiver, request)
    wait_until(lambda: running.stats()["ended_by_status"].get("busy") == 20)
    dropped = running.stats()["faults"]["dropped"]
    wait_until(lambda: running.stats()["webhooks"].get("delivered") == 40 - dropped)
    arrived = sum(len(receiver.received(r.attempt_id)) for r in requests)
    assert 0 < dropped < 40
    assert arrived == 40 - dropped


@pytest.mark.parametrize(
    ("faults", "status", "code"),
    [(Faults(http_429_p=1.0), 429, 20429), (Faults(http_5xx_p=1.0), 500, 20500)],
)
def test_refusals_do_nothing(
    start_carrier: StartCarrier, faults: Faults, status: int, code: int
) -> None:
    running = start_carrier(faults=faults)
    response = httpx.post(
        f"{running.base_url}/2010-04-01/Accounts/{running.account_sid}/Calls.json",
        data={"To": "+15551230001", "From": "+15550000001", "Url": "http://127.0.0.1:9/"},
        auth=(running.account_sid, running.auth_token),
        timeout=5,
    )
    assert response.status_code == status
    assert response.json()["code"] == code
    stats = running.stats()
    assert stats["total_calls"] == 0
    assert sum(stats["faults"].values()) == 1


def test_slow_responses_come_after_the_call_exists(start_carrier: StartCarrier) -> None:
    running = start_carrier(faults=Faults(slow_p=1.0, slow_delay_s=0.3))
    started = time.monotonic()
    response = httpx.post(
        f"{running.base_url}/2010-04-01/Accounts/{running.account_sid}/Calls.json",
        data={"To": "+15551230001", "From": "+15550000001", "Url": "http://127.0.0.1:9/"},
        auth=(running.account_sid, running.auth_token),
        timeout=5,
    )
    assert response.status_code == 201
    assert time.monotonic() - started >= 0.3
    assert running.stats()["faults"] == {"slow": 1}


def test_faults_can_be_changed_while_running(
    start_carrier: StartCarrier, receiver: Receiver
) -> None:
    running = start_carrier(profile=only("busy"), faults=Faults(drop_p=1.0))
    running.carrier.set_faults(Faults())
    request = receiver.request()
    _place(running, receiver, request)
    wait_until(lambda: len(receiver.received(request.attempt_id, "status")) == 2)
    assert "dropped" not in running.stats()["faults"]


def test_a_stream_that_fails_and_a_blocked_caller_number_are_reported_as_twilio_would(
    start_carrier: StartCarrier, receiver: Receiver
) -> None:
    blocked = "+14155550199"
    profile = dataclasses.replace(only("human"), stream_failures=1.0, blocked=frozenset({blocked}))
    running = start_carrier(profile=profile)
    answered = receiver.request()
    refused = receiver.request(from_=blocked)
    _place(running, receiver, answered)
    _place(running, receiver, refused)
    wait_until(lambda: running.stats()["ended_by_status"].get("completed") == 1)
    wait_until(lambda: running.stats()["ended_by_status"].get("failed") == 1)
    wait_until(lambda: bool(receiver.received(answered.attempt_id, "stream")))
    (stream,) = receiver.received(answered.attempt_id, "stream")
    assert stream.signature_ok
    event = stream.event()
    assert (event.kind, event.stream_event) == ("stream", "stream-error")
    assert stream.params["StreamError"]
    ends = [e for e in receiver.events(refused.attempt_id) if e.call_status is not None]
    assert [(e.call_status.value, e.sip_response_code) for e in ends][-1] == ("failed", 608)
    assert receiver.received(refused.attempt_id, "stream") == []
