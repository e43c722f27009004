"""``GET /metrics`` of the API, and the callbacks its webhooks take in or turn away."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine

from dialer.api.app import create_app
from dialer.db.models import CallAttempt
from dialer.observability import metrics
from dialer.policy.campaign_state import CampaignAction
from dialer.settings import Settings
from dialer.telephony.twilio.signature import sign
from tests.flow.harness import Harness, numbers
from tests.flow.test_webhooks import PUBLIC, TOKEN, _NoCalls
from tests.observability.scrape import CONTRACT, Scraped


@pytest.fixture
def wired(engine: Engine) -> Iterator[tuple[Harness, TestClient]]:
    h = Harness(engine, provider=_NoCalls())
    settings = Settings(
        database_url=str(engine.url), twilio_auth_token=TOKEN, public_base_url=PUBLIC
    )
    app = create_app(settings, engine=engine, clock=h.clock, runtime_factory=lambda: h.runtime)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield h, client


def rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("dialer_callbacks_rejected_total", {"reason": reason}) or 0.0


def received(kind: str) -> float:
    return REGISTRY.get_sample_value("dialer_callbacks_received_total", {"kind": kind}) or 0.0


def post(client: TestClient, path: str, params: dict[str, str], token: str = TOKEN) -> int:
    signature = sign(PUBLIC + path, params, token)
    response = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
    assert client.app.state.ctx.wait_idle(10)  # type: ignore[attr-defined]
    return response.status_code


def test_metrics_are_served_without_credentials_and_kept_out_of_the_openapi_document(
    wired: tuple[Harness, TestClient],
) -> None:
    _, client = wired
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    scraped = Scraped(response.text)
    assert scraped.value("dialer_build_info", version=metrics.dialer_version(), role="api") == 1
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_the_campaign_gauges_follow_the_database(wired: tuple[Harness, TestClient]) -> None:
    h, client = wired
    running = h.campaign(numbers(4), max_concurrency=2)
    draft = h.campaign(numbers(2, start=2000))
    h.act(running, CampaignAction.START)
    h.step()
    scraped = Scraped(client.get("/metrics").text)
    with h.session() as session:
        tenant = session.scalar(
            sa.text("SELECT tenant_id FROM campaigns WHERE id = :id"), {"id": running}
        )
    labels = {"campaign": running, "tenant": str(tenant)}
    assert scraped.value("dialer_campaign_slots_limit", **labels) == 2
    assert scraped.value("dialer_campaign_calls_in_flight", **labels) == 2
    assert scraped.value("dialer_campaign_recipients", state="in_flight", **labels) == 2
    assert scraped.value("dialer_campaign_recipients", state="pending", **labels) == 2
    assert scraped.total("dialer_campaign_recipients", **labels) == 4
    assert not scraped.values("dialer_campaign_slots_limit", campaign=draft), "drafts are left out"
    # An embedded API has no semaphore of the fleet's, nor a broker.
    assert "dialer_campaign_slots_in_use" not in scraped.types
    assert "dialer_queue_depth" not in scraped.types
    for name in ("dialer_campaign_slots_limit", "dialer_campaign_recipients"):
        assert scraped.types[name] == CONTRACT[name][0]
        assert scraped.label_names(name) == set(CONTRACT[name][1])

    h.act(running, CampaignAction.PAUSE)
    paused = Scraped(client.get("/metrics").text)
    assert paused.value("dialer_campaign_slots_limit", **labels) == 2, "paused campaigns stay"


def test_callbacks_are_counted_received_or_rejected_by_reason(
    wired: tuple[Harness, TestClient],
) -> None:
    h, client = wired
    cid = h.campaign(numbers(1), max_concurrency=1)
    h.act(cid, CampaignAction.START)
    h.step()
    with h.session() as session:
        attempt = session.scalars(sa.select(CallAttempt)).one()
    sid = str(attempt.provider_call_id)
    path = f"/webhooks/twilio/{attempt.id}/status"
    ringing = {"CallSid": sid, "CallStatus": "ringing", "SequenceNumber": "1"}
    counts = {r: rejected(r) for r in ("bad_signature", "malformed", "unknown_call", "too_large")}
    status = received("status")

    assert post(client, path, ringing) == 204
    assert post(client, path, ringing, token="forged") == 403
    assert post(client, path, {"CallSid": sid, "SequenceNumber": "2"}) == 422
    assert post(client, f"/webhooks/twilio/{attempt.id + 1000}/status", ringing) == 204
    other = {"CallSid": "CA-not-this-one", "CallStatus": "ringing", "SequenceNumber": "3"}
    assert post(client, path, other) == 204
    huge = client.post(
        path,
        content=b"CallSid=" + b"x" * (128 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert huge.status_code == 422

    assert received("status") == status + 1
    assert rejected("bad_signature") == counts["bad_signature"] + 1
    assert rejected("malformed") == counts["malformed"] + 1
    assert rejected("unknown_call") == counts["unknown_call"] + 2
    assert rejected("too_large") == counts["too_large"] + 1
