"""Signed provider callbacks over HTTP: the same ingestion as the simulator, 403 when unsigned."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.api.app import create_app
from dialer.db.models import CallAttempt, CallEvent
from dialer.policy.attempt_state import AttemptStatus, Outcome, RecipientStatus
from dialer.policy.campaign_state import CampaignAction
from dialer.settings import Settings
from dialer.telephony.twilio.signature import sign
from scheduler.loop import SchedulerLoop
from tests.flow.harness import Harness, numbers

TOKEN = "webhook-secret"
PUBLIC = "https://dialer.example.com"


class _NoCalls:
    """A provider that accepts calls and never calls back: the webhooks do."""

    name = "twilio"

    def __init__(self) -> None:
        self.n = 0

    def place_call(self, request):  # type: ignore[no-untyped-def]
        from dialer.telephony.base import CallStatus, PlacedCall

        self.n += 1
        return PlacedCall(f"CA{self.n:032d}", CallStatus.QUEUED)

    def fetch(self, provider_call_id):  # type: ignore[no-untyped-def]
        from dialer.telephony.base import CallInfo, CallStatus

        self.fetched = provider_call_id
        return CallInfo(
            provider_call_id, CallStatus.COMPLETED, "+12125551000", "+14155550100",
            answered_by="machine_end_beep",
        )  # fmt: skip

    def hang_up(self, provider_call_id: str) -> None:
        self.hung_up = provider_call_id

    def run_due(self, now, *, most=None):  # type: ignore[no-untyped-def]
        return 0


@pytest.fixture
def wired(engine: Engine) -> Iterator[tuple[Harness, TestClient]]:
    h = Harness(engine, provider=_NoCalls())
    settings = Settings(
        database_url=str(engine.url), twilio_auth_token=TOKEN, public_base_url=PUBLIC
    )
    app = create_app(settings, engine=engine, clock=h.clock, runtime_factory=lambda: h.runtime)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield h, client


def _post(client: TestClient, path: str, params: dict[str, str], *, token: str = TOKEN):  # type: ignore[no-untyped-def]
    signature = sign(PUBLIC + path, params, token)
    response = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
    # What follows the answer (the slot freed, a refill asked for) is done, too.
    assert client.app.state.ctx.wait_idle(10)  # type: ignore[attr-defined]
    return response


def test_signed_callbacks_drive_the_attempt_and_repeats_are_harmless(
    wired: tuple[Harness, TestClient],
) -> None:
    h, client = wired
    cid = h.campaign(numbers(1), max_concurrency=1)
    h.act(cid, CampaignAction.START)
    h.step()
    with h.session() as session:
        attempt = session.scalars(sa.select(CallAttempt)).one()
    assert attempt.status is AttemptStatus.DIALING
    base = f"/webhooks/twilio/{attempt.id}"
    query = f"?campaign={cid}"
    sid = attempt.provider_call_id
    assert sid is not None
    events = [
        ("status", {"CallSid": sid, "CallStatus": "ringing", "SequenceNumber": "1"}),
        ("amd", {"CallSid": sid, "AnsweredBy": "machine_end_beep"}),
        ("status", {"CallSid": sid, "CallStatus": "in-progress", "SequenceNumber": "2"}),
        (
            "status",
            {
                "CallSid": sid,
                "CallStatus": "completed",
                "SequenceNumber": "3",
                "CallDuration": "14",
            },
        ),
    ]
    # Out of order, and every one twice.
    for kind, params in [events[3], events[0], events[1], events[2], *events]:
        response = _post(client, f"{base}/{kind}{query}", params)
        assert response.status_code == 204, response.text
    with h.session() as session:
        attempt = session.get_one(CallAttempt, attempt.id)
        assert attempt.status is AttemptStatus.ENDED
        assert attempt.outcome is Outcome.VOICEMAIL
        assert attempt.answered_by == "machine_end_beep"
        assert attempt.duration_s == 14
        assert session.scalar(sa.select(sa.func.count()).select_from(CallEvent)) == 4
    assert h.counts(cid) == h.truth(cid)
    assert h.counts(cid)["attempts.voicemail"] == 1
    assert h.semaphore.snapshot() == {}, "the slot is released exactly once"
    assert h.queue.dispatches == [cid], "a freed slot asks for a dispatch at once"


def test_bad_signature_is_403_and_changes_nothing(wired: tuple[Harness, TestClient]) -> None:
    h, client = wired
    cid = h.campaign(numbers(1), max_concurrency=1)
    h.act(cid, CampaignAction.START)
    h.step()
    with h.session() as session:
        attempt = session.scalars(sa.select(CallAttempt)).one()
    path = f"/webhooks/twilio/{attempt.id}/status?campaign={cid}"
    params = {
        "CallSid": attempt.provider_call_id or "",
        "CallStatus": "completed",
        "SequenceNumber": "3",
    }
    assert _post(client, path, params, token="wrong").status_code == 403
    assert client.post(path, data=params).status_code == 403
    signed_elsewhere = sign("http://internal:8000" + path, params, TOKEN)
    response = client.post(path, data=params, headers={"X-Twilio-Signature": signed_elsewhere})
    assert response.status_code == 403, "the signature is checked against the public URL"
    tampered = dict(params, CallStatus="busy")
    signature = sign(PUBLIC + path, params, TOKEN)
    assert (
        client.post(path, data=tampered, headers={"X-Twilio-Signature": signature}).status_code
        == 403
    )
    with h.session() as session:
        assert session.get_one(CallAttempt, attempt.id).status is AttemptStatus.DIALING
    assert h.counts(cid)["recipients." + RecipientStatus.IN_FLIGHT.value] == 1


def test_an_embedded_api_records_callbacks_and_leaves_the_refill_to_the_scheduler(
    engine: Engine,
) -> None:
    """Embedded mode (no Redis): the semaphore lives in the scheduler process. The API's
    default runtime must not dispatch: it would count slots in a semaphore of its own, empty,
    and dial past ``max_concurrency``. The scheduler frees the slot at its next tick."""
    h = Harness(engine, provider=_NoCalls())  # the scheduler process
    loop = SchedulerLoop(
        h.runtime, interval_s=1.0, reconcile_interval_s=3600.0, free_ended_each_tick=True
    )
    settings = Settings(
        database_url=str(engine.url), twilio_auth_token=TOKEN, public_base_url=PUBLIC
    )
    app = create_app(settings, engine=engine, clock=h.clock)  # its own, default runtime
    cid = h.campaign(numbers(3), max_concurrency=1)
    h.act(cid, CampaignAction.START)
    loop.run_once(h.clock.now)
    h.run_tasks()
    with h.session() as session:
        first = session.scalars(sa.select(CallAttempt)).one()
    assert first.status is AttemptStatus.DIALING
    params = {
        "CallSid": first.provider_call_id or "",
        "CallStatus": "completed",
        "SequenceNumber": "3",
        "AnsweredBy": "human",
    }
    with TestClient(app, raise_server_exceptions=False) as client:
        path = f"/webhooks/twilio/{first.id}/status?campaign={cid}"
        assert _post(client, path, params).status_code == 204
    # The API ended the attempt and dialed nothing in its place.
    with h.session() as session:
        rows = list(session.scalars(sa.select(CallAttempt)))
    assert [(a.id, a.status) for a in rows] == [(first.id, AttemptStatus.ENDED)]
    assert sum(len(v) for v in h.semaphore.snapshot().values()) > 0, "freed by the scheduler"

    h.clock.advance(1.0)  # the next tick, past the pace of the first dial
    loop.run_once(h.clock.now)
    h.run_tasks()

    with h.session() as session:
        rows = list(session.scalars(sa.select(CallAttempt).order_by(CallAttempt.id)))
    assert [a.status for a in rows] == [AttemptStatus.ENDED, AttemptStatus.DIALING]
    assert max(h.peak.values()) == 1
    assert h.counts(cid) == h.truth(cid)


def test_the_streams_signed_callbacks_record_its_start_and_unsigned_ones_are_403(
    wired: tuple[Harness, TestClient],
) -> None:
    h, client = wired
    cid = h.campaign(numbers(1), max_concurrency=1)
    h.act(cid, CampaignAction.START)
    h.step()
    with h.session() as session:
        attempt = session.scalars(sa.select(CallAttempt)).one()
    sid = attempt.provider_call_id
    assert sid is not None
    path = f"/webhooks/twilio/{attempt.id}/stream?campaign={cid}"
    started = {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": sid,
        "StreamSid": "MZ" + "1" * 32,
        "StreamEvent": "stream-started",
        "Timestamp": "2026-11-23T17:00:05.250Z",
    }
    assert _post(client, path, started, token="wrong").status_code == 403
    with h.session() as session:
        assert session.get_one(CallAttempt, attempt.id).stream_started_at is None
    for _ in range(2):  # a repeat changes nothing
        assert _post(client, path, started).status_code == 204
    bad = _post(client, path, {**started, "StreamEvent": "stream-exploded"})
    assert bad.status_code == 422
    assert [d["field"] for d in bad.json()["detail"]] == ["StreamEvent"]
    with h.session() as session:
        stored = session.get_one(CallAttempt, attempt.id).stream_started_at
        logged = session.scalars(
            sa.select(CallEvent.kind).where(CallEvent.attempt_id == attempt.id)
        ).all()
    assert stored is not None
    assert stored.isoformat() == "2026-11-23T17:00:05.250000+00:00"
    assert logged == ["stream"]
