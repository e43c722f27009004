"""TwiML for answered calls, templates checked at save, and call summaries."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.api.app import create_app
from dialer.db.models import CallAttempt
from dialer.policy.campaign_state import CampaignAction
from dialer.services import greeting
from dialer.settings import Settings
from dialer.telephony.twilio.signature import sign
from tests.api.conftest import headers_for
from tests.flow.harness import Harness, numbers
from tests.flow.test_ingestion import SilentProvider

TOKEN = "tok"
PUBLIC = "https://dialer.example.com"
STREAM = "wss://assistant.example.com/stream"


@pytest.fixture
def wired(engine: Engine) -> Iterator[tuple[Harness, TestClient]]:
    h = Harness(engine, provider=SilentProvider())
    settings = Settings(
        database_url=str(engine.url),
        twilio_auth_token=TOKEN,
        public_base_url=PUBLIC,
        assistant_stream_url=STREAM,
    )
    app = create_app(settings, engine=engine, clock=h.clock, runtime_factory=lambda: h.runtime)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield h, client


def _twiml(client: TestClient, attempt_id: int, **params: str) -> ET.Element:
    path = f"/webhooks/twilio/{attempt_id}/twiml"
    form = {"CallSid": "CA1", **params}
    headers = {"X-Twilio-Signature": sign(PUBLIC + path, form, TOKEN)}
    response = client.post(path, data=form, headers=headers)
    assert response.status_code == 200, response.text
    return ET.fromstring(response.text)


def _dial_one(h: Harness, **fields: object) -> tuple[str, int]:
    template = fields.pop("opening_message_template", None)
    cid = h.campaign(numbers(1), max_concurrency=1, **fields)
    from dialer.db.models import Campaign, Recipient

    with h.session() as session, session.begin():
        recipient = session.scalars(sa.select(Recipient)).one()
        recipient.metadata_ = {"first_name": "Ada"}
        recipient.assistant_overrides = {"voice": "alto"}
        session.get_one(Campaign, cid).opening_message_template = template
    h.act(cid, CampaignAction.START)
    h.step()
    with h.session() as session:
        return cid, session.scalars(sa.select(CallAttempt)).one().id


def test_answered_human_connects_the_stream_with_context(
    wired: tuple[Harness, TestClient], engine: Engine
) -> None:
    h, client = wired
    cid, attempt_id = _dial_one(
        h,
        opening_message_template="Hi {{first_name}}!",
        campaign_context="Renewals",
        use_short_term_summaries=True,
        short_term_summaries_limit=2,
    )
    auth = headers_for(engine, "tenant")
    for text in ("first", "second", "third"):
        h.clock.advance(1)
        stored = client.post(f"/call/{attempt_id}/summary", json={"summary": text}, headers=auth)
        assert stored.status_code == 201, stored.text
    root = _twiml(client, attempt_id)
    stream = root.find("./Connect/Stream")
    assert stream is not None
    assert stream.get("url") == STREAM
    # The stream reports its start to us: a person kept waiting is an abandoned call.
    assert stream.get("statusCallback") == (
        f"{PUBLIC}/webhooks/twilio/{attempt_id}/stream?campaign={cid}"
    )
    assert stream.get("statusCallbackMethod") == "POST"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params["campaign_id"] == cid
    assert params["opening_message"] == "Hi Ada!"
    assert params["campaign_context"] == "Renewals"
    assert params["assistant_overrides"] == '{"voice": "alto"}'
    assert params["returning_recipient"] == "false"
    assert params["summary_0"] == "third"  # one summary per attempt: the last one posted
    assert "summary_1" not in params


def test_answering_machine_gets_the_voicemail_message(wired: tuple[Harness, TestClient]) -> None:
    h, client = wired
    _, attempt_id = _dial_one(h, voicemail_message="Call us back.")
    root = _twiml(client, attempt_id, AnsweredBy="machine_end_beep")
    assert root.findtext("Say") == "Call us back."
    assert root.find("Hangup") is not None


def test_other_tenant_cannot_store_a_summary(
    wired: tuple[Harness, TestClient], engine: Engine
) -> None:
    h, client = wired
    _, attempt_id = _dial_one(h)
    other = headers_for(engine, "someone-else")
    response = client.post(f"/call/{attempt_id}/summary", json={"summary": "x"}, headers=other)
    assert response.status_code == 404


def test_rendering() -> None:
    assert (
        greeting.render(
            "Hi {{ first_name }} {{metadata.plan}}!", {"first_name": "Ada", "plan": "gold"}
        )
        == "Hi Ada gold!"
    )
    assert greeting.check("{{a}} and {{b") is not None
    assert greeting.check("{{a.b}}") is not None
    assert greeting.missing("{{a}} {{b}}", {"a": 1}) == ["b"]


def test_call_detail_is_the_tenants_own(wired: tuple[Harness, TestClient], engine: Engine) -> None:
    h, client = wired
    cid, attempt_id = _dial_one(h)
    mine = client.get(f"/call/{attempt_id}", headers=headers_for(engine, "tenant"))
    assert mine.status_code == 200
    assert mine.json()["campaign_id"] == cid
    assert [c["id"] for c in mine.json()["history"]] == [attempt_id]
    listed = client.get(f"/campaign/{cid}/calls", headers=headers_for(engine, "tenant")).json()
    assert [c["id"] for c in listed["data"]] == [attempt_id]
    theirs = client.get(f"/call/{attempt_id}", headers=headers_for(engine, "someone-else"))
    assert theirs.status_code == 404
