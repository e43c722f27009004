"""Test helpers shared by the carrier and telephony tests: a webhook receiver, polling."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dialer.carrier import serve_in_thread
from dialer.telephony.base import CallRequest
from dialer.telephony.events import EventKind, ProviderEvent
from dialer.telephony.simulator.distributions import Fixed
from dialer.telephony.simulator.plan import OutcomeWeights, SimulationProfile
from dialer.telephony.twilio.callbacks import parse_event
from dialer.telephony.twilio.signature import SIGNATURE_HEADER, is_valid
from dialer.telephony.twilio.urls import WEBHOOKS_PATH, WebhookUrls

DEADLINE_S = 5.0


def wait_until(condition: Callable[[], bool], timeout_s: float = DEADLINE_S) -> None:
    """Poll ``condition`` until it holds; fail the test once ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(0.005)


@dataclass(frozen=True)
class Received:
    kind: str  # status, amd, stream, or twiml (the answer URL)
    attempt_id: str
    url: str
    params: dict[str, str]
    signature: str
    signature_ok: bool
    at: float  # monotonic seconds

    def event(self) -> ProviderEvent:
        assert self.kind in ("status", "amd", "stream")
        kind: EventKind = "status" if self.kind == "status" else "amd"
        if self.kind == "stream":
            kind = "stream"
        return parse_event(kind, self.params)


class Receiver:
    """Our side of Twilio's webhooks, at the paths the Twilio adapter gives each call:
    records every request and checks its signature."""

    def __init__(self, auth_token: str) -> None:
        self.auth_token = auth_token
        self.base_url = ""
        self._lock = threading.Lock()
        self._received: list[Received] = []
        route = Route(f"{WEBHOOKS_PATH}/{{attempt_id}}/{{kind}}", self._hook, methods=["POST"])
        self.app = Starlette(routes=[route])

    async def _hook(self, request: Request) -> Response:
        form = await request.form()
        params = {key: str(value) for key, value in form.items()}
        signature = request.headers.get(SIGNATURE_HEADER, "")
        record = Received(
            kind=request.path_params["kind"],
            attempt_id=request.path_params["attempt_id"],
            url=str(request.url),
            params=params,
            signature=signature,
            signature_ok=is_valid(str(request.url), params, signature, self.auth_token),
            at=time.monotonic(),
        )
        with self._lock:
            self._received.append(record)
        if record.kind != "twiml":
            return Response("<Response/>", media_type="application/xml")
        # The assistant's stream, reporting here as the dialer's TwiML has it report.
        callback = str(request.url).replace("/twiml", "/stream")
        body = (
            '<Response><Connect><Stream url="wss://assistant.invalid/stream" '
            f'statusCallback="{escape(callback)}" statusCallbackMethod="POST"/>'
            "</Connect></Response>"
        )
        return Response(body, media_type="application/xml")

    def received(self, attempt_id: str, kind: str | None = None) -> list[Received]:
        with self._lock:
            return [
                r
                for r in self._received
                if r.attempt_id == attempt_id and (kind is None or r.kind == kind)
            ]

    def events(self, attempt_id: str) -> list[ProviderEvent]:
        """Status, AMD and media stream callbacks of an attempt, parsed, in arrival order."""
        kinds = ("status", "amd", "stream")
        return [r.event() for r in self.received(attempt_id) if r.kind in kinds]

    @property
    def webhooks(self) -> WebhookUrls:
        """What a Twilio adapter is given so that its calls' webhooks come here."""
        return WebhookUrls(self.base_url)

    def request(self, **overrides: object) -> CallRequest:
        """A call request under a fresh attempt id (its webhooks come here when the adapter
        was built with :attr:`webhooks`)."""
        fields: dict[str, object] = {
            "attempt_id": str(overrides.pop("attempt_id", uuid.uuid4().hex)),
            "campaign_id": "campaign-1",
            "to": "+15551230001",
            "from_": "+15550000001",
            "time_limit_s": 3600,
        }
        fields.update(overrides)
        return CallRequest(**fields)  # type: ignore[arg-type]


@contextmanager
def receiving(auth_token: str) -> Iterator[Receiver]:
    receiver = Receiver(auth_token)
    with serve_in_thread(receiver.app) as base_url:
        receiver.base_url = base_url
        yield receiver


def only(outcome: str, *, ring_s: float = 2.0, talk_s: float = 5.0) -> SimulationProfile:
    """A profile where every call ends with ``outcome``, on fixed, short timings."""
    weights = dict.fromkeys(("human", "voicemail", "busy", "no_answer", "failed"), 0.0)
    weights[outcome] = 1.0
    return SimulationProfile(
        weights=OutcomeWeights(**weights),
        setup_s=Fixed(1.0),
        ring_s=Fixed(ring_s),
        talk_s=Fixed(talk_s),
        amd_s=Fixed(2.0),
        greeting_s=Fixed(3.0),
        message_s=Fixed(4.0),
        reject_s=Fixed(1.0),
    )
