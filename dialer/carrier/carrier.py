"""The carrier's switch: the calls it holds, playing each out in time on the event loop.

Everything here runs on the server's one asyncio loop, so call state needs no lock. A call
waits in ``queued`` for its turn under the CPS limit (Twilio queues calls above the rate, it
does not refuse them), then follows its :class:`~dialer.telephony.simulator.plan.CallPlan`,
reporting each step to the URLs given at create.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hmac
import logging
import random
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import httpx

from dialer.carrier import twiml
from dialer.carrier.config import CarrierConfig, Faults
from dialer.carrier.create import CreateCall
from dialer.carrier.delivery import CallbackStream, WebhookSender
from dialer.carrier.params import (
    answer_params,
    callback_params,
    stream_params,
)
from dialer.carrier.resources import TwilioApiError
from dialer.carrier.stats import CarrierStats, LiveKey
from dialer.clock import utc_now
from dialer.errors import ValidationError
from dialer.telephony.base import CallStatus
from dialer.telephony.events import MACHINE_ANSWERS
from dialer.telephony.simulator.call import SimulatedCall
from dialer.telephony.simulator.plan import PlannedEvent, new_call_sid, plan_call
from dialer.telephony.twilio.callbacks import parse_timestamp

log = logging.getLogger(__name__)

_EVENT_NAMES = {
    CallStatus.INITIATED: "initiated",
    CallStatus.RINGING: "ringing",
    CallStatus.IN_PROGRESS: "answered",
}
_CANCELABLE = frozenset({CallStatus.QUEUED, CallStatus.INITIATED, CallStatus.RINGING})


@dataclass(slots=True, eq=False)
class CarrierCall:
    sim: SimulatedCall
    request: CreateCall
    key: LiveKey
    stream: CallbackStream
    updated_at: datetime
    task: asyncio.Task[None] | None = None
    #: The request for the answer URL's TwiML, and the ``<Stream statusCallback>`` it gave.
    answer: asyncio.Task[None] | None = None
    stream_callback: str | None = None


class Carrier:
    """A Twilio-compatible carrier for one account. Start and stop it on the serving loop."""

    def __init__(self, config: CarrierConfig) -> None:
        self._config = config
        self.stats = CarrierStats()
        # Plans and faults draw from separate generators: turning a fault on keeps outcomes.
        self._plan_rng = random.Random(config.seed)
        self._fault_rng = random.Random(None if config.seed is None else config.seed + 1)
        self._stream_rng = random.Random(None if config.seed is None else config.seed + 2)
        self._calls: dict[str, CarrierCall] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self._sender: WebhookSender | None = None
        self._next_slot = 0.0  # event-loop time the next queued call may start

    @property
    def config(self) -> CarrierConfig:
        return self._config

    def reconfigure(self, **changes: Any) -> CarrierConfig:
        """Replace fields of the configuration (faults, profile, cps...) for later calls."""
        self._config = dataclasses.replace(self._config, **changes)
        return self._config

    def set_faults(self, faults: Faults) -> None:
        self.reconfigure(faults=faults)

    async def start(self) -> None:
        # trust_env off: callbacks go straight to the dialer, never through a proxy variable.
        self._client = httpx.AsyncClient(timeout=self._config.callback_timeout_s, trust_env=False)
        self._sender = WebhookSender(self._client, self._config.auth_token, self.stats)

    async def stop(self) -> None:
        """Stop every call's playback and close the webhook client."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def authenticate(self, authorization: str | None, path_account_sid: str, path: str) -> None:
        """HTTP basic auth with the account sid and auth token, as Twilio's API wants."""
        user, _, password = _basic_credentials(authorization).partition(":")
        good_user = hmac.compare_digest(user.encode(), self._config.account_sid.encode())
        good_password = hmac.compare_digest(password.encode(), self._config.auth_token.encode())
        if not (good_user and good_password):
            raise TwilioApiError(401, 20003, "Authenticate")
        if path_account_sid != self._config.account_sid:
            raise TwilioApiError(404, 20404, f"The requested resource {path} was not found")

    def request_fault(self) -> TwilioApiError | None:
        """An injected refusal for this REST request, drawn from the fault probabilities."""
        faults = self._config.faults
        if self._fault_rng.random() < faults.http_429_p:
            self.stats.fault("http_429")
            return TwilioApiError(429, 20429, "Too Many Requests")
        if self._fault_rng.random() < faults.http_5xx_p:
            self.stats.fault("http_5xx")
            return TwilioApiError(500, 20500, "Internal Server Error")
        return None

    def response_delay_s(self) -> float:
        faults = self._config.faults
        if faults.slow_p and self._fault_rng.random() < faults.slow_p:
            self.stats.fault("slow")
            return faults.slow_delay_s
        return 0.0

    def create(self, request: CreateCall) -> CarrierCall:
        if self._sender is None:
            raise RuntimeError("the carrier has not been started")
        config = self._config
        now = utc_now()
        plan = plan_call(
            config.profile,
            self._plan_rng,
            ring_timeout_s=request.timeout_s,
            time_limit_s=request.time_limit_s,
            machine_detection=request.machine_detection,
            machine_detection_timeout_s=request.machine_detection_timeout_s,
            from_=request.from_,
            stream_rng=self._stream_rng,
        )
        sim = SimulatedCall(
            new_call_sid(),
            request.to,
            request.from_,
            plan,
            now,
            account_sid=config.account_sid,
            time_scale=config.time_scale,
        )
        stream = CallbackStream(
            self._sender, lambda: self._config.faults, self._fault_rng, self.stats
        )
        call = CarrierCall(sim, request, LiveKey(request.from_, request.campaign), stream, now)
        self._calls[sim.sid] = call
        self.stats.call_created(call.key, request.to)
        call.task = self._spawn(self._play(call))
        return call

    def get(self, sid: str) -> CarrierCall | None:
        return self._calls.get(sid)

    def calls(self) -> list[CarrierCall]:
        return list(self._calls.values())

    def hang_up(self, call: CarrierCall, status: str) -> None:
        """``Status=completed`` ends the call in any state; ``canceled`` only before answer."""
        if call.sim.ended or (status == "canceled" and call.sim.status not in _CANCELABLE):
            return
        if call.task is not None:
            call.task.cancel()
        now = utc_now()
        event = call.sim.hang_up(now)
        self._ended(call, now)
        if event is not None:
            self._spawn(self._report(call, event, now))

    def matching(self, query: Mapping[str, str]) -> list[CarrierCall]:
        """Calls matching Twilio's list filters, newest first (TwilioApiError if malformed)."""
        bounds = {name: _bound(query[name]) for name in _TIME_FILTERS if query.get(name)}
        found = []
        for call in self._calls.values():
            sim = call.sim
            if query.get("To") and sim.to != query["To"]:
                continue
            if query.get("From") and sim.from_ != query["From"]:
                continue
            if query.get("Status") and sim.status.value != query["Status"]:
                continue
            if bounds and not _within(sim.started_at, bounds):
                continue
            found.append(call)
        return sorted(found, key=lambda call: call.sim.created_at, reverse=True)

    async def _play(self, call: CarrierCall) -> None:
        loop = asyncio.get_running_loop()
        await self._wait_turn(loop)
        began = loop.time()
        scale = call.sim.time_scale
        for event in call.sim.plan.events:
            delay_s = began + event.offset_s * scale - loop.time()
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            now = utc_now()
            if not call.sim.apply(event, now):
                return
            call.updated_at = now
            if call.sim.ended:
                self._ended(call, now)
            await self._report(call, event, now)

    async def _wait_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        cps = self._config.cps
        if cps is None:
            return
        now = loop.time()
        slot = max(now, self._next_slot)
        self._next_slot = slot + 1.0 / cps
        if slot > now:
            await asyncio.sleep(slot - now)

    async def _report(self, call: CarrierCall, event: PlannedEvent, at: datetime) -> None:
        """Send the webhooks ``event`` calls for; flush held-back ones once the call ends."""
        request = call.request
        if event.kind == "stream":
            await self._report_stream(call, event, at)
            return
        if event.kind == "amd":
            if not request.async_amd:
                self._request_answer_url(call, event.answered_by)
            elif request.async_amd_status_callback:
                params = callback_params(call.sim, event, at)
                await call.stream.send(request.async_amd_status_callback, params)
            return
        assert event.status is not None
        if event.status is CallStatus.IN_PROGRESS and (request.async_amd or not _detects(call)):
            self._request_answer_url(call, None)
        name = "completed" if event.status.is_terminal else _EVENT_NAMES[event.status]
        if request.status_callback and name in request.status_callback_events:
            params = callback_params(call.sim, event, at)
            await call.stream.send(request.status_callback, params, ends=event.status.is_terminal)
        if event.status.is_terminal:
            await call.stream.flush()

    def _request_answer_url(self, call: CarrierCall, answered_by: str | None) -> None:
        """Ask the answer URL for TwiML as Twilio does on connect. Of the answer, where its
        media stream reports (``<Stream statusCallback>``) is used, and a callee who presses a
        key (:attr:`CarrierConfig.keys`) presses it during its ``<Gather>``."""
        if call.request.url and self._sender is not None:
            call.answer = self._spawn(self._answer(call, call.request.url, answered_by))

    async def _answer(self, call: CarrierCall, url: str, answered_by: str | None) -> None:
        """Fetch the answer's TwiML; a callee with a key presses it during its ``<Gather>``
        (``Digits`` posted, signed, to the gather's action), and the call ends when what
        that answers hangs up."""
        assert self._sender is not None
        params = answer_params(call.sim, answered_by)
        document = await self._sender.fetch(url, params)
        call.stream_callback = twiml.stream_callback_of(document) if document else None
        key = self._config.keys.get(call.sim.to)
        if document is None or key is None or answered_by in MACHINE_ANSWERS:
            return
        action = twiml.gather_action(document)
        if action is None:
            return
        reply = await self._sender.fetch(action, {**params, "Digits": key})
        if reply is not None and twiml.hangs_up(reply):
            self.hang_up(call, "completed")

    async def _report_stream(self, call: CarrierCall, event: PlannedEvent, at: datetime) -> None:
        """The media stream's status callback, to the URL the answer's TwiML named (none:
        the answer named none, or could not be had; nothing is sent)."""
        if call.answer is not None:
            await asyncio.wait([call.answer])
        if call.stream_callback:
            await call.stream.send(call.stream_callback, stream_params(call.sim, event, at))

    def _ended(self, call: CarrierCall, at: datetime) -> None:
        call.updated_at = at
        self.stats.call_ended(call.key, call.sim.status.value)

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(_logged(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


_TIME_FILTERS = ("StartTime", "StartTime>", "StartTime<")


async def _logged(work: Coroutine[Any, Any, Any]) -> None:
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("carrier call playback failed")


def _detects(call: CarrierCall) -> bool:
    return call.request.machine_detection is not None


def _basic_credentials(authorization: str | None) -> str:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        return base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""


def _bound(text: str) -> date | datetime:
    """A list filter's time: a day (``YYYY-MM-DD``) or an exact time."""
    try:
        return date.fromisoformat(text) if len(text) == 10 else parse_timestamp(text)
    except (ValueError, ValidationError):
        raise TwilioApiError(400, 20001, f"Invalid date: {text}") from None


def _within(started_at: datetime | None, bounds: Mapping[str, date | datetime]) -> bool:
    """Twilio's StartTime filters: ``StartTime>`` on or after, ``StartTime<`` on or before."""
    if started_at is None:
        return False  # a call still queued has not started: no start-time filter matches it
    for name, bound in bounds.items():
        order = _compare(started_at, bound)
        if (name == "StartTime" and order != 0) or (name == "StartTime>" and order < 0):
            return False
        if name == "StartTime<" and order > 0:
            return False
    return True


def _compare(moment: datetime, bound: date | datetime) -> int:
    """-1, 0 or 1 as ``moment`` is before, at or after ``bound`` (a whole day, or a time)."""
    if isinstance(bound, datetime):
        return (moment > bound) - (moment < bound)
    day = moment.date()
    return (day > bound) - (day < bound)
