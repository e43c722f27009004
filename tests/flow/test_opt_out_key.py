"""The opt-out key: said with the opening message in a ``<Gather>``, posted signed to the
opt-out webhook, which suppresses the number for the configured key only."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.api.app import create_app
from dialer.carrier import serve_in_thread
from dialer.db.models import CallAttempt, Campaign, Recipient, Suppression
from dialer.policy.attempt_state import AttemptStatus, Outcome, RecipientStatus
from dialer.policy.campaign_state import CampaignAction
from dialer.settings import Settings
from dialer.telephony.base import CallStatus
from dialer.telephony.twilio.adapter import TwilioProvider
from dialer.telephony.twilio.signature import sign
from dialer.telephony.twilio.urls import WebhookUrls
from tests.carrier.fixtures import StartCarrier, start_carrier
from tests.carrier.support import only, wait_until
from tests.e2e.fleet import free_port
from tests.flow.harness import Harness, numbers
from tests.flow.test_ingestion import SilentProvider

__all__ = ["start_carrier"]  # the fixture, for the test on the carrier

TOKEN = "tok"
PUBLIC = "https://dialer.example.com"
STREAM = "wss://assistant.example.com/stream"
NUMBER = numbers(1)[0]


@dataclass
class Call:
    h: Harness
    client: TestClient
    campaign_id: str
    other_campaign: str
    attempt_id: int


def _call(engine: Engine, digit: str) -> Iterator[Call]:
    h = Harness(engine, provider=SilentProvider())
    settings = Settings(
        database_url=str(engine.url),
        twilio_auth_token=TOKEN,
        public_base_url=PUBLIC,
        assistant_stream_url=STREAM,
        opt_out_digit=digit,
    )
    app = create_app(settings, engine=engine, clock=h.clock, runtime_factory=lambda: h.runtime)
    cid = h.campaign([NUMBER], max_concurrency=1)
    other = h.campaign([NUMBER])
    with h.session() as session, session.begin():
        session.get_one(Campaign, cid).opening_message_template = "Hello from Acme."
    h.act(cid, CampaignAction.START)
    h.step()
    with h.session() as session:
        attempt_id = session.scalars(sa.select(CallAttempt.id)).one()
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Call(h, client, cid, other, attempt_id)


@pytest.fixture
def call(engine: Engine) -> Iterator[Call]:
    yield from _call(engine, "9")


def _post(client: TestClient, path: str, form: dict[str, str], *, token: str = TOKEN) -> ET.Element:
    headers = {"X-Twilio-Signature": sign(PUBLIC + path, form, token)}
    response = client.post(path, data=form, headers=headers)
    assert response.status_code == 200, response.text
    return ET.fromstring(response.text)


def _suppressions(call: Call) -> list[Suppression]:
    with call.h.session() as session:
        return list(session.scalars(sa.select(Suppression)))


def _other_recipient(call: Call) -> Recipient:
    with call.h.session() as session:
        return session.scalars(
            sa.select(Recipient).where(Recipient.campaign_id == call.other_campaign)
        ).one()


def test_the_opening_message_is_said_in_a_gather_posting_to_the_opt_out_webhook(
    call: Call,
) -> None:
    root = _post(call.client, f"/webhooks/twilio/{call.attempt_id}/twiml", {"CallSid": "CA1"})

    gather = root.find("./Gather")
    assert gather is not None
    assert gather.get("action") == (
        f"{PUBLIC}/webhooks/twilio/{call.attempt_id}/opt_out?campaign={call.campaign_id}"
    )
    assert (gather.get("input"), gather.get("numDigits")) == ("dtmf", "1")
    assert gather.findtext("Say") == "Hello from Acme."
    stream = root.find("./Connect/Stream")
    assert stream is not None, "no key: on to the assistant"
    said = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert said["opening_message_said"] == "true"


def test_the_opt_out_key_suppresses_the_number_and_hangs_up(call: Call) -> None:
    path = f"/webhooks/twilio/{call.attempt_id}/opt_out?campaign={call.campaign_id}"
    root = _post(call.client, path, {"CallSid": "CA1", "Digits": "9"})

    assert root.find("./Say") is not None
    assert root.find("./Hangup") is not None
    assert root.find("./Connect") is None
    [entry] = _suppressions(call)
    assert (entry.phone_number, entry.source) == (NUMBER, f"dtmf:{call.attempt_id}")
    other = _other_recipient(call)
    assert (other.status, other.reason) == (RecipientStatus.SUPPRESSED, "opted-out")
    for cid in (call.campaign_id, call.other_campaign):
        assert call.h.counts(cid) == call.h.truth(cid)

    _post(call.client, path, {"CallSid": "CA1", "Digits": "9"})  # Twilio retries: harmless
    assert len(_suppressions(call)) == 1


def test_another_key_goes_on_to_the_assistant_and_changes_nothing(call: Call) -> None:
    path = f"/webhooks/twilio/{call.attempt_id}/opt_out?campaign={call.campaign_id}"
    root = _post(call.client, path, {"CallSid": "CA1", "Digits": "5"})

    assert root.find("./Hangup") is None
    assert root.find("./Connect/Stream") is not None
    assert _suppressions(call) == []
    assert _other_recipient(call).status is RecipientStatus.PENDING


def test_an_unsigned_or_badly_signed_key_is_refused_and_changes_nothing(call: Call) -> None:
    path = f"/webhooks/twilio/{call.attempt_id}/opt_out?campaign={call.campaign_id}"
    form = {"CallSid": "CA1", "Digits": "9"}
    unsigned = call.client.post(path, data=form)
    forged = call.client.post(
        path, data=form, headers={"X-Twilio-Signature": sign(PUBLIC + path, form, "wrong")}
    )

    assert unsigned.status_code == forged.status_code == 403
    assert _suppressions(call) == []
    assert _other_recipient(call).status is RecipientStatus.PENDING


@pytest.fixture
def no_key(engine: Engine) -> Iterator[Call]:
    yield from _call(engine, "")


def test_without_a_key_the_opening_is_the_assistants_and_no_key_acts(no_key: Call) -> None:
    root = _post(no_key.client, f"/webhooks/twilio/{no_key.attempt_id}/twiml", {"CallSid": "C"})
    assert root.find("./Gather") is None
    assert root.find("./Say") is None
    stream = root.find("./Connect/Stream")
    assert stream is not None
    said = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert said["opening_message_said"] == "false"

    path = f"/webhooks/twilio/{no_key.attempt_id}/opt_out?campaign={no_key.campaign_id}"
    _post(no_key.client, path, {"CallSid": "C", "Digits": "9"})
    assert _suppressions(no_key) == []


def test_a_callee_pressing_the_key_on_the_carrier_is_opted_out_end_to_end(
    engine: Engine, start_carrier: StartCarrier
) -> None:
    presses, listens = numbers(2)
    running = start_carrier(profile=only("human", talk_s=600.0), keys={presses: "9"})
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    provider = TwilioProvider(
        running.account_sid,
        running.auth_token,
        webhooks=WebhookUrls(public),
        base_url=running.base_url,
    )
    h = Harness(engine, provider=provider)
    settings = Settings(
        database_url=str(engine.url),
        twilio_auth_token=running.auth_token,
        public_base_url=public,
        assistant_stream_url=STREAM,
        opt_out_digit="9",
    )
    app = create_app(settings, engine=engine, clock=h.clock, runtime_factory=lambda: h.runtime)
    cid = h.campaign([presses, listens], max_concurrency=2)
    later = h.campaign([presses])
    with h.session() as session, session.begin():
        session.get_one(Campaign, cid).opening_message_template = "Hello from Acme."
    with serve_in_thread(app, port=port):
        h.act(cid, CampaignAction.START)
        h.runtime.dispatcher.tick(h.clock.now)
        h.run_tasks()
        h.clock.advance(1)  # the second call's start, paced
        h.run_tasks()

        def attempt(number: str) -> CallAttempt:
            with h.session() as session:
                return session.scalars(
                    sa.select(CallAttempt).where(CallAttempt.to_number == number)
                ).one()

        wait_until(lambda: attempt(presses).status is AttemptStatus.ENDED, timeout_s=15)
        with h.session() as session:
            [entry] = session.scalars(sa.select(Suppression))
        assert (entry.phone_number, entry.source) == (presses, f"dtmf:{attempt(presses).id}")
        ended = running.carrier.get(attempt(presses).provider_call_id or "")
        assert ended is not None
        assert ended.sim.status is CallStatus.COMPLETED
        assert attempt(presses).outcome is Outcome.HUMAN
        listener = running.carrier.get(attempt(listens).provider_call_id or "")
        assert listener is not None
        assert not listener.sim.ended, "no key: the call goes on"
    with h.session() as session:
        suppressed = session.scalars(
            sa.select(Recipient).where(Recipient.campaign_id == later)
        ).one()
    assert (suppressed.status, suppressed.reason) == (RecipientStatus.SUPPRESSED, "opted-out")
    for campaign_id in (cid, later):
        assert h.counts(campaign_id) == h.truth(campaign_id)
