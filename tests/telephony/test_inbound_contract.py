"""The provider port's inbound contract, run against every provider: events in, in any order,
repeated, through the provider's own way in, end the attempt as the provider's record says.

``simulator``: its events, as it reports them for a call, handed to the lanes the runtime reads
them from. ``twilio``: the signed callbacks the carrier simulator posted for a call placed by
the Twilio adapter, replayed with their own signatures to the API's Twilio webhook routes.
Each provider's events for one real call are recorded first, then delivered shuffled, every
one at least twice.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.api.app import create_app
from dialer.db.models import CallAttempt, CallEvent, Recipient
from dialer.policy.attempt_state import AttemptStatus, RecipientStatus
from dialer.policy.campaign_state import CampaignAction
from dialer.settings import Settings
from dialer.telephony.base import CallInfo
from dialer.telephony.events import outcome_for
from dialer.telephony.simulator.channel import EventLanes, LaneReaders
from dialer.telephony.twilio.adapter import TwilioProvider
from dialer.telephony.twilio.signature import SIGNATURE_HEADER
from tests.carrier.fixtures import StartCarrier
from tests.carrier.support import Receiver, only, wait_until
from tests.flow.harness import Harness, numbers

OUTCOMES = ["human", "voicemail", "busy", "no_answer"]


class Inbound(Protocol):
    h: Harness

    def record(self, attempt_id: int, call_id: str) -> list[object]:
        """Let the call play out; what the provider sent about it, not taken in yet."""
        ...

    def deliver(self, attempt_id: int, events: list[object]) -> None:
        """Hand ``events`` to the provider's way in, in this order."""
        ...


class SimulatorInbound:
    def __init__(self, engine: Engine, outcome: str) -> None:
        self.h = Harness(engine, sim=only(outcome))

    def record(self, attempt_id: int, call_id: str) -> list[object]:
        self.h.clock.advance(3600)
        self.h.simulator.run_due(self.h.clock.now)  # into the harness's buffer only
        return [event for _, event in self.h.sink.take()]

    def deliver(self, attempt_id: int, events: list[object]) -> None:
        lanes = EventLanes()
        readers = LaneReaders(lanes, self.h.runtime.take_event)
        for event in events:
            lanes.deliver(str(attempt_id), event)  # type: ignore[arg-type]
        readers.close()


@dataclass(frozen=True)
class _Post:
    path: str
    params: dict[str, str]
    signature: str


class TwilioInbound:
    def __init__(
        self, engine: Engine, outcome: str, start_carrier: StartCarrier, receiver: Receiver
    ) -> None:
        running = start_carrier(profile=only(outcome))
        provider = TwilioProvider(
            running.account_sid,
            running.auth_token,
            webhooks=receiver.webhooks,
            base_url=running.base_url,
        )
        self.h = Harness(engine, provider=provider)
        self.receiver = receiver
        self.outcome = outcome
        settings = Settings(
            database_url=str(engine.url),
            twilio_auth_token=running.auth_token,
            public_base_url=receiver.base_url,
        )
        app = create_app(settings, engine=engine, runtime_factory=lambda: self.h.runtime)
        self.client = TestClient(app, raise_server_exceptions=False)

    def record(self, attempt_id: int, call_id: str) -> list[object]:
        outcome = self.outcome

        def callbacks() -> list[_Post]:
            return [
                _Post(_path_and_query(r.url), r.params, r.signature)
                for r in self.receiver.received(str(attempt_id))
                if r.kind in ("status", "amd", "stream") and r.params.get("CallSid") == call_id
            ]

        def ended() -> bool:
            statuses = [p.params.get("CallStatus") for p in callbacks()]
            answered = "in-progress" in statuses
            amd = any(p.path.split("?")[0].endswith("/amd") for p in callbacks())
            stream = any(p.path.split("?")[0].endswith("/stream") for p in callbacks())
            return (
                statuses[-1:] != []
                and _terminal(statuses)
                and (amd or not answered)
                and (stream or outcome != "human")
            )

        wait_until(ended)
        return list(callbacks())

    def deliver(self, attempt_id: int, events: list[object]) -> None:
        for post in events:
            assert isinstance(post, _Post)
            response = self.client.post(
                post.path, data=post.params, headers={SIGNATURE_HEADER: post.signature}
            )
            assert response.status_code == 204, response.text
            # What follows the answer (the slot freed, a refill asked for) is done, too.
            assert self.client.app.state.ctx.wait_idle(10)  # type: ignore[attr-defined]


def _terminal(statuses: list[str | None]) -> bool:
    return bool({"completed", "busy", "no-answer", "failed", "canceled"} & set(statuses))


def _path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


MakeInbound = Callable[[str], Inbound]


@pytest.fixture(params=["simulator", "twilio"])
def make_inbound(request: pytest.FixtureRequest, engine: Engine) -> Iterator[MakeInbound]:
    if request.param == "simulator":
        yield lambda outcome: SimulatorInbound(engine, outcome)
        return
    start_carrier: StartCarrier = request.getfixturevalue("start_carrier")
    receiver: Receiver = request.getfixturevalue("receiver")
    yield lambda outcome: TwilioInbound(engine, outcome, start_carrier, receiver)


def _placed(h: Harness) -> tuple[str, int, str]:
    """A campaign of one recipient whose call is placed: (campaign, attempt, call id)."""
    cid = h.campaign(
        numbers(1),
        max_concurrency=1,
        retry_policy={"max_attempts": 1},
        voicemail_message="Sorry we missed you.",  # no hang-up on a machine
    )
    h.act(cid, CampaignAction.START)
    h.runtime.dispatcher.tick(h.clock.now)
    h.run_tasks()
    with h.session() as session:
        attempt = session.scalars(sa.select(CallAttempt)).one()
    assert attempt.status is AttemptStatus.DIALING
    assert attempt.provider_call_id is not None
    return cid, attempt.id, attempt.provider_call_id


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_events_in_any_order_and_repeated_end_the_call_as_the_provider_says(
    make_inbound: MakeInbound, outcome: str
) -> None:
    inbound = make_inbound(outcome)
    h = inbound.h
    cid, attempt_id, call_id = _placed(h)
    recorded = inbound.record(attempt_id, call_id)
    shuffled = recorded * 2 + recorded[: len(recorded) // 2]
    random.Random(f"{outcome}-{len(recorded)}").shuffle(shuffled)

    inbound.deliver(attempt_id, shuffled)

    truth: CallInfo = h.runtime.provider.fetch(call_id)
    assert truth.status.is_terminal
    with h.session() as session:
        attempt = session.get_one(CallAttempt, attempt_id)
        recipient = session.get_one(Recipient, attempt.recipient_id)
        logged = session.scalar(
            sa.select(sa.func.count())
            .select_from(CallEvent)
            .where(CallEvent.attempt_id == attempt_id)
        )
    assert attempt.status is AttemptStatus.ENDED
    assert attempt.outcome is outcome_for(truth.status, truth.answered_by)
    assert attempt.answered_by == truth.answered_by
    assert attempt.duration_s == truth.duration_s
    assert logged == len(recorded), "every event once in the log, repeats dropped"
    # A person answered and the stream started at once, whichever came first, the call's end
    # or the stream's report: not abandoned (a late report takes the verdict back).
    assert attempt.abandoned is (False if outcome == "human" else None)
    assert recipient.status in {RecipientStatus.DONE, RecipientStatus.EXHAUSTED}
    assert h.counts(cid) == h.truth(cid)
    assert h.semaphore.snapshot() == {}, "the slot is freed, once"
