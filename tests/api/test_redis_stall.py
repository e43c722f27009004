"""A Redis that accepts connections and never answers fails requests; it never hangs them."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.api.app import create_app
from dialer.db.engine import session_factory
from dialer.db.models import CallAttempt, Campaign, Recipient
from dialer.policy.attempt_state import AttemptStatus, Outcome, RecipientStatus
from dialer.settings import Settings
from dialer.telephony.twilio.signature import SIGNATURE_HEADER, sign
from tests.api.conftest import CALLER, ManualClock, campaign_body, headers_for


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """The URL of a server on 127.0.0.1 that accepts connections, reads, and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)  # read into the kernel's buffer, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


@pytest.mark.timeout(60)  # a hang fails here, not after the suite's two minutes
def test_start_answers_and_readiness_says_redis_is_down(
    engine: Engine, clock: ManualClock, silent_redis: str
) -> None:
    settings = Settings(
        database_url=str(engine.url),
        redis_url=silent_redis,
        redis_connect_timeout_s=0.5,
        redis_timeout_s=0.5,
    )
    app = create_app(settings, engine=engine, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers.update(headers_for(engine, "alice", CALLER))
        body = campaign_body(recipients=[{"phone_number": "+14155552671"}])
        cid = client.post("/campaign", json=body).json()["id"]

        started = client.post(f"/campaign/{cid}/start")
        assert started.status_code == 200, started.text
        assert started.json()["status"] == "running", "the scheduler's tick dispatches it"

        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] == "ok"
        assert ready.json()["checks"]["redis"].startswith("error: ")


TOKEN = "stall-auth-token"
PUBLIC = "https://dialer.example.com"
CALL_SID = "CA" + "7" * 32
#: What every request must answer within while Redis stalls, whatever its client timeouts.
ANSWER_WITHIN_S = 5.0


def _attempt_in_flight(engine: Engine, campaign_id: str) -> int:
    """The campaign's recipient with a call ringing, as a dial leaves it."""
    with session_factory(engine)() as session, session.begin():
        campaign = session.get_one(Campaign, campaign_id)
        person = session.scalars(
            sa.select(Recipient).where(Recipient.campaign_id == campaign_id)
        ).one()
        person.status = RecipientStatus.IN_FLIGHT
        person.attempt_count = person.run_attempts = 1
        attempt = CallAttempt(
            recipient_id=person.id,
            campaign_id=campaign_id,
            run_id=campaign.current_run_id,
            attempt_number=1,
            from_number="+14155550100",
            to_number=person.phone_number,
            status=AttemptStatus.RINGING,
            provider="twilio",
            provider_call_id=CALL_SID,
            dialed_at=datetime.now(UTC),
        )
        session.add(attempt)
        session.flush()
        return attempt.id


@pytest.mark.timeout(120)
def test_with_the_default_timeouts_a_start_and_a_signed_callback_answer_within_5_s(
    engine: Engine, clock: ManualClock, silent_redis: str
) -> None:
    """Redis accepts connections and never answers; its clients keep their default timeouts
    (connect 2 s, read 5 s). The start answers, the callback is recorded before its answer,
    and what needs Redis (the slot, a refill) is left to after the answer."""
    settings = Settings(
        database_url=str(engine.url),
        redis_url=silent_redis,
        provider="twilio",
        twilio_account_sid="AC" + "1" * 32,
        twilio_auth_token=TOKEN,
        public_base_url=PUBLIC,
    )
    assert settings.redis_timeout_s >= ANSWER_WITHIN_S  # the defaults alone would not do
    app = create_app(settings, engine=engine, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers.update(headers_for(engine, "alice", CALLER))
        body = campaign_body(recipients=[{"phone_number": "+14155552671"}])
        cid = client.post("/campaign", json=body).json()["id"]

        began = time.monotonic()
        started = client.post(f"/campaign/{cid}/start")
        took_s = time.monotonic() - began
        assert started.status_code == 200, started.text
        assert took_s < ANSWER_WITHIN_S

        attempt_id = _attempt_in_flight(engine, cid)
        path = f"/webhooks/twilio/{attempt_id}/status?campaign={cid}"
        params = {"CallSid": CALL_SID, "CallStatus": "busy", "SequenceNumber": "2"}
        signature = sign(PUBLIC + path, params, TOKEN)
        began = time.monotonic()
        answer = client.post(path, data=params, headers={SIGNATURE_HEADER: signature})
        took_s = time.monotonic() - began
        assert answer.status_code == 204, answer.text
        assert took_s < ANSWER_WITHIN_S
        with session_factory(engine)() as session:
            attempt = session.get_one(CallAttempt, attempt_id)
            assert (attempt.status, attempt.outcome) == (AttemptStatus.ENDED, Outcome.BUSY)
