"""The Twilio adapter against the carrier simulator on 127.0.0.1: never the real Twilio."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
import requests
from pydantic import SecretStr
from urllib3.exceptions import NewConnectionError, ProtocolError

from dialer.carrier import Faults, RunningCarrier
from dialer.clock import utc_now
from dialer.errors import (
    AmbiguousProviderError,
    ConfigurationError,
    RetryableProviderError,
    TerminalProviderError,
)
from dialer.settings import load_settings
from dialer.telephony.base import CallStatus
from dialer.telephony.twilio import adapter
from dialer.telephony.twilio.adapter import TwilioProvider
from dialer.telephony.twilio.errors import provider_error
from dialer.telephony.twilio.urls import WebhookUrls
from tests.carrier.fixtures import StartCarrier
from tests.carrier.support import Receiver, only, wait_until

NOWHERE = WebhookUrls("https://dialer.example")


def _provider(
    running: RunningCarrier, receiver: Receiver | None = None, http_timeout_s: float = 5.0
) -> TwilioProvider:
    return TwilioProvider(
        running.account_sid,
        running.auth_token,
        webhooks=NOWHERE if receiver is None else receiver.webhooks,
        base_url=running.base_url,
        http_timeout_s=http_timeout_s,
    )


def _params(running: RunningCarrier, sid: str) -> dict[str, list[str]]:
    call = running.carrier.get(sid)
    assert call is not None
    return call.request.params


def test_places_calls_on_the_configured_base_url_with_twilios_parameters(
    start_carrier: StartCarrier, receiver: Receiver
) -> None:
    running = start_carrier(profile=only("human"))
    request = receiver.request(ring_timeout_s=5, machine_detection_timeout_s=60, time_limit_s=900)
    placed = _provider(running, receiver).place_call(request)

    params = _params(running, placed.provider_call_id)
    # Our ids come back in the webhook URLs: the attempt's in the path, the campaign's in the
    # query, under the public base URL (Twilio signs what it requests).
    hooks = f"{receiver.base_url}/webhooks/twilio/{request.attempt_id}"
    query = f"?campaign={request.campaign_id}"
    assert params["To"] == [request.to]
    assert params["From"] == [request.from_]
    assert params["Url"] == [f"{hooks}/twiml{query}"]
    assert params["StatusCallback"] == [f"{hooks}/status{query}"]
    assert params["StatusCallbackMethod"] == ["POST"]
    assert params["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert params["Timeout"] == ["15"]  # 5 asked for, never below 15
    assert params["MachineDetectionTimeout"] == ["59"]  # 60 is ours, Twilio stops at 59
    assert params["MachineDetection"] == ["DetectMessageEnd"]
    assert params["AsyncAmd"] == ["true"]
    assert params["AsyncAmdStatusCallback"] == [f"{hooks}/amd{query}"]
    assert params["AsyncAmdStatusCallbackMethod"] == ["POST"]
    assert params["TimeLimit"] == ["900"]


def test_callbacks_arrive_signed_with_the_auth_token(
    start_carrier: StartCarrier, receiver: Receiver
) -> None:
    running = start_carrier(profile=only("voicemail"))
    request = receiver.request()
    _provider(running, receiver).place_call(request)
    wait_until(lambda: len(receiver.received(request.attempt_id)) == 6)  # 4 status, amd, twiml
    received = receiver.received(request.attempt_id)
    assert all(r.signature_ok for r in received)
    assert {r.kind for r in received} == {"status", "amd", "twiml"}
    assert next(r.params["AnsweredBy"] for r in received if r.kind == "amd").startswith("machine")


@pytest.mark.parametrize(
    ("faults", "status", "code"),
    [(Faults(http_429_p=1.0), 429, "20429"), (Faults(http_5xx_p=1.0), 500, "20500")],
)
def test_throttling_and_server_errors_are_retryable(
    start_carrier: StartCarrier, receiver: Receiver, faults: Faults, status: int, code: str
) -> None:
    running = start_carrier(faults=faults)
    provider = _provider(running)
    with pytest.raises(RetryableProviderError) as caught:
        provider.place_call(receiver.request())
    assert (caught.value.status, caught.value.code) == (status, code)
    with pytest.raises(RetryableProviderError):
        provider.find_calls("+15551230001", "+15550000001", utc_now())
    assert running.stats()["total_calls"] == 0  # refused before anything was done


def test_a_refused_request_is_terminal_and_carries_twilios_code(
    start_carrier: StartCarrier, receiver: Receiver
) -> None:
    running = start_carrier()
    with pytest.raises(TerminalProviderError) as caught:
        _provider(running).place_call(receiver.request(from_="+0"))
    assert (caught.value.status, caught.value.code) == (400, "21212")
    assert "Invalid 'From' Phone Number" in str(caught.value)


def test_bad_credentials_are_terminal(start_carrier: StartCarrier, receiver: Receiver) -> None:
    running = start_carrier()
    provider = TwilioProvider(
        running.account_sid, "wrong", webhooks=NOWHERE, base_url=running.base_url
    )
    with pytest.raises(TerminalProviderError) as caught:
        provider.place_call(receiver.request())
    assert (caught.value.status, caught.value.code) == (401, "20003")


def test_a_timeout_after_sending_is_ambiguous_and_find_calls_reconciles_it(
    start_carrier: StartCarrier, receiver: Receiver
) -> None:
    running = start_carrier(profile=only("human"), faults=Faults(slow_p=1.0, slow_delay_s=0.6))
    request = receiver.request(to="+15557770042")
    since = utc_now() - timedelta(seconds=30)
    with pytest.raises(AmbiguousProviderError):
        _provider(running, http_timeout_s=0.2).place_call(request)

    running.carrier.set_faults(Faults())
    found = _provider(running).find_calls(request.to, request.from_, since)
    assert len(found) == 1  # the call exists: reconcile, never dial again
    assert found[0].provider_call_id == running.carrier.calls()[0].sim.sid


def test_find_calls_sees_calls_still_queued(
    start_carrier: StartCarrier, receiver: Receiver
) -> None:
    """A queued call has no start time, so a StartTime filter alone would miss it."""
    running = start_carrier(profile=only("human"), cps=1.0)
    provider = _provider(running)
    since = utc_now() - timedelta(seconds=30)
    first = provider.place_call(receiver.request(to="+15557770051"))
    second = provider.place_call(receiver.request(to="+15557770052"))
    assert provider.fetch(second.provider_call_id).status is CallStatus.QUEUED
    assert [
        c.provider_call_id for c in provider.find_calls("+15557770052", "+15550000001", since)
    ] == [second.provider_call_id]
    assert [
        c.provider_call_id for c in provider.find_calls("+15557770051", "+15550000001", since)
    ] == [first.provider_call_id]


def test_connection_refused_is_retryable(receiver: Receiver) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = TwilioProvider("AC1", "token", webhooks=NOWHERE, base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(RetryableProviderError):
        provider.place_call(receiver.request())


@pytest.mark.parametrize(
    ("exc", "may_have_created", "error"),
    [
        (requests.exceptions.ReadTimeout("read timed out"), True, AmbiguousProviderError),
        (requests.exceptions.ReadTimeout("read timed out"), False, RetryableProviderError),
        (requests.exceptions.ConnectTimeout("connect timed out"), True, RetryableProviderError),
        (
            requests.exceptions.ConnectionError(
                ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
            ),
            True,
            AmbiguousProviderError,
        ),
        (
            requests.exceptions.ConnectionError(NewConnectionError(None, "refused")),  # type: ignore[arg-type]
            True,
            RetryableProviderError,
        ),
        (requests.exceptions.InvalidURL("no host"), True, TerminalProviderError),
    ],
)
def test_transport_errors_by_what_they_prove(
    exc: Exception, may_have_created: bool, error: type[Exception]
) -> None:
    assert type(provider_error(exc, may_have_created=may_have_created)) is error


def test_other_exceptions_are_not_provider_errors() -> None:
    assert provider_error(KeyError("x"), may_have_created=True) is None


def test_built_from_settings_without_network() -> None:
    settings = load_settings(
        provider="twilio",
        twilio_account_sid="AC123",
        twilio_auth_token=SecretStr("token"),
        twilio_base_url="http://127.0.0.1:9/",
    )
    provider = TwilioProvider.from_settings(settings)
    assert provider._client.api.base_url == "http://127.0.0.1:9"
    assert provider.name == "twilio"
    with pytest.raises(ConfigurationError):
        TwilioProvider.from_settings(load_settings(provider="simulator"))


def test_live_calls_pages_through_each_live_status(
    start_carrier: StartCarrier, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One list per live status, every page of it: a request per page, not per call."""
    # In real time: a call rings until just before its 30 s ring timeout runs out. Sped up,
    # that is under a second, and a slow machine saw calls answered while it listed them.
    running = start_carrier(profile=only("human", ring_s=100_000), time_scale=1.0)
    provider = _provider(running, receiver)
    placed = {provider.place_call(receiver.request()).provider_call_id for _ in range(5)}
    wait_until(lambda: all(provider.fetch(sid).status is CallStatus.RINGING for sid in placed))
    monkeypatch.setattr(adapter, "LIVE_PAGE_SIZE", 2)

    live = provider.live_calls()
    assert live.ids == placed
    # queued: 1 empty page; initiated: 1; ringing: 3 pages of 2, 2 and 1; in-progress: 1.
    assert live.requests == 1 + 1 + 3 + 1
