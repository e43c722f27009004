"""Every order of a call's callbacks, repeated or not, ends in the same state and counts."""

from __future__ import annotations

from itertools import permutations
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.db.models import CallAttempt, Recipient
from dialer.policy.attempt_state import AttemptStatus, Outcome, RecipientStatus
from dialer.policy.campaign_state import CampaignAction
from dialer.telephony.base import CallInfo, CallStatus, PlacedCall
from tests.flow.harness import Harness, numbers


class SilentProvider:
    """Accepts calls; its record says a machine answered. Callbacks come from the test."""

    name = "twilio"

    def __init__(self) -> None:
        self.n = 0
        self.hung_up: list[str] = []

    def place_call(self, request: Any) -> PlacedCall:
        self.n += 1
        return PlacedCall(f"CA{self.n:032d}", CallStatus.QUEUED)

    def fetch(self, provider_call_id: str) -> CallInfo:
        return CallInfo(
            provider_call_id, CallStatus.COMPLETED, "", "", answered_by="machine_end_beep"
        )

    def hang_up(self, provider_call_id: str) -> None:
        self.hung_up.append(provider_call_id)

    def run_due(self, now: Any, *, most: int | None = None) -> int:
        return 0


def _events(sid: str) -> list[tuple[str, dict[str, str]]]:
    return [
        ("status", {"CallSid": sid, "CallStatus": "initiated", "SequenceNumber": "0"}),
        ("status", {"CallSid": sid, "CallStatus": "ringing", "SequenceNumber": "1"}),
        ("status", {"CallSid": sid, "CallStatus": "in-progress", "SequenceNumber": "2"}),
        ("amd", {"CallSid": sid, "AnsweredBy": "machine_end_beep"}),
        (
            "status",
            {"CallSid": sid, "CallStatus": "completed", "SequenceNumber": "3", "CallDuration": "9"},
        ),
    ]


def test_every_permutation_of_a_calls_events_gives_the_same_end(engine: Engine) -> None:
    orders = list(permutations(range(5)))
    provider = SilentProvider()
    h = Harness(engine, provider=provider)
    cid = h.campaign(
        numbers(len(orders)),
        max_concurrency=200,
        retry_policy={"max_attempts": 1},
        voicemail_message="Sorry we missed you.",
    )
    h.act(cid, CampaignAction.START)
    while h.queue.dials or not provider.n:
        h.runtime.dispatcher.tick(h.clock.now)
        h.run_tasks()
        h.clock.advance(1)
        if provider.n >= len(orders):
            break
    with h.session() as session:
        attempts = list(session.scalars(sa.select(CallAttempt).order_by(CallAttempt.id)))
    assert len(attempts) == len(orders)
    for n, (attempt, order) in enumerate(zip(attempts, orders, strict=True)):
        assert attempt.provider_call_id is not None
        events = _events(attempt.provider_call_id)
        # Every order; one order in six also gets every callback twice (Twilio retries).
        copies = 2 if n % 6 == 0 else 1
        for index in order:
            kind, params = events[index]
            for _ in range(copies):
                h.callback(attempt.id, kind, params)  # type: ignore[arg-type]
    with h.session() as session:
        ended = list(session.scalars(sa.select(CallAttempt).order_by(CallAttempt.id)))
        recipients = list(session.scalars(sa.select(Recipient)))
    finals = {(a.status, a.outcome, a.answered_by, a.duration_s) for a in ended}
    assert finals == {(AttemptStatus.ENDED, Outcome.VOICEMAIL, "machine_end_beep", 9)}
    assert {r.status for r in recipients} == {RecipientStatus.DONE}
    counts = h.counts(cid)
    assert counts == h.truth(cid)
    assert counts["attempts.voicemail"] == len(orders)
    assert counts["recipients.done"] == len(orders)
    assert h.semaphore.snapshot() == {}
    assert provider.hung_up == [], "a campaign with a voicemail message leaves it"


def test_machine_verdict_without_voicemail_message_hangs_up(engine: Engine) -> None:
    provider = SilentProvider()
    h = Harness(engine, provider=provider)
    cid = h.campaign(numbers(1), max_concurrency=1)
    h.act(cid, CampaignAction.START)
    h.step()
    with h.session() as session:
        attempt = session.scalars(sa.select(CallAttempt)).one()
    sid = attempt.provider_call_id
    assert sid is not None
    h.callback(attempt.id, "amd", {"CallSid": sid, "AnsweredBy": "fax"})
    assert provider.hung_up == [sid]


class EagerProvider(SilentProvider):
    """Its first callback reaches us before ``place_call`` has returned the call's id."""

    harness: Harness

    def place_call(self, request: Any) -> PlacedCall:
        placed = super().place_call(request)
        params = {"CallSid": placed.provider_call_id, "CallStatus": "initiated"}
        self.harness.callback(int(request.attempt_id), "status", params)
        return placed


def test_a_callback_before_the_dial_is_recorded_keeps_the_provider(engine: Engine) -> None:
    provider = EagerProvider()
    h = Harness(engine, provider=provider)
    provider.harness = h
    cid = h.campaign(numbers(2), max_concurrency=2)
    h.act(cid, CampaignAction.START)
    h.step()
    with h.session() as session:
        attempts = list(session.scalars(sa.select(CallAttempt).order_by(CallAttempt.id)))
    assert len(attempts) == 2
    assert [(a.provider, a.provider_call_id) for a in attempts] == [
        ("twilio", f"CA{n:032d}") for n in (1, 2)
    ]
