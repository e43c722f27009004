"""The in-process telephony provider: simulated callees, events as a provider reports them,
no network.

The embedded default and the provider of most tests. Calls follow a seeded
:class:`~dialer.telephony.simulator.plan.SimulationProfile`, and every event a real provider
would report by callback goes to an :class:`~dialer.telephony.events.EventSink` as a
:class:`~dialer.telephony.events.ProviderEvent`, so it runs through the same ingestion code
as real webhooks.

Two ways to drive time:

* manual (the constructor): nothing happens until :meth:`SimulatedProvider.run_due` is called
  with a time, which delivers every callback due by then, in order, on the caller's thread;
* real time (:meth:`SimulatedProvider.realtime`): a background thread delivers callbacks when
  their wall-clock time comes; :meth:`SimulatedProvider.close` stops it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType

from dialer.clock import Clock, as_utc, utc_now
from dialer.errors import TerminalProviderError
from dialer.telephony.base import CallerIdStatus, CallInfo, CallRequest, LiveCalls, PlacedCall
from dialer.telephony.events import EventSink
from dialer.telephony.simulator.call import SimulatedCall
from dialer.telephony.simulator.plan import (
    PlannedEvent,
    SimulationProfile,
    caller_id_status,
    new_call_sid,
    number_problem,
    plan_call,
)

log = logging.getLogger(__name__)


@dataclass(order=True, slots=True)
class _Due:
    at: datetime
    order: int  # ties keep scheduling order, so a call's events never swap
    sid: str = field(compare=False)
    event: PlannedEvent = field(compare=False)
    applied: bool = field(compare=False, default=False)  # hang-ups change state at once


class SimulatedProvider:
    """A :class:`~dialer.telephony.base.TelephonyProvider` whose calls exist only in memory.

    Thread-safe. ``time_scale`` is clock seconds per simulated second (0.01 plays a 60 s call
    in 0.6 s); reported durations stay in simulated seconds.
    """

    name = "simulator"

    def __init__(
        self,
        sink: EventSink,
        *,
        profile: SimulationProfile | None = None,
        seed: int | None = None,
        clock: Clock = utc_now,
        time_scale: float = 1.0,
        lose_ended_p: float = 0.0,
        numbers: frozenset[str] | None = None,
    ) -> None:
        """``lose_ended_p``: the share of calls whose end is never reported (a terminal
        callback lost on its way, as happens to webhooks); the call still ends, and its record
        (:meth:`fetch`, :meth:`live_calls`) says so. ``numbers``: the E.164 numbers the
        simulated account owns, the only ones it calls from; None = it owns any valid number."""
        if not time_scale > 0:
            raise ValueError("time_scale must be positive")
        if not 0.0 <= lose_ended_p <= 1.0:
            raise ValueError("lose_ended_p must be a probability between 0 and 1")
        self._sink = sink
        self._profile = profile or SimulationProfile()
        self._rng = random.Random(seed)
        # Losses draw from their own generator: turning them on keeps every call's plan.
        self._loss_rng = random.Random(None if seed is None else seed + 1)
        # The media streams' draws too: turning stream failures on keeps every outcome.
        self._stream_rng = random.Random(None if seed is None else seed + 2)
        self._lose_ended_p = lose_ended_p
        self._numbers = numbers
        self.lost_ended = 0  # terminal events not reported
        self._clock = clock
        self._time_scale = time_scale
        self._calls: dict[str, SimulatedCall] = {}
        self._attempt_of: dict[str, str] = {}
        self._due: list[_Due] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    @classmethod
    def realtime(
        cls,
        sink: EventSink,
        *,
        profile: SimulationProfile | None = None,
        seed: int | None = None,
        time_scale: float = 1.0,
        lose_ended_p: float = 0.0,
        numbers: frozenset[str] | None = None,
    ) -> SimulatedProvider:
        """A simulator that delivers callbacks on its own thread at wall-clock times."""
        provider = cls(
            sink,
            profile=profile,
            seed=seed,
            time_scale=time_scale,
            lose_ended_p=lose_ended_p,
            numbers=numbers,
        )
        provider._thread = threading.Thread(
            target=provider._deliver_forever, name="dialer-simulator", daemon=True
        )
        provider._thread.start()
        return provider

    def place_call(self, request: CallRequest) -> PlacedCall:
        problem = number_problem(request.to, request.from_, self._numbers)
        if problem is not None:
            code, message = problem
            raise TerminalProviderError(message, code=str(code), status=400)
        with self._changed:
            now = as_utc(self._clock())
            plan = plan_call(
                self._profile,
                self._rng,
                ring_timeout_s=request.ring_timeout_s,
                time_limit_s=request.time_limit_s,
                machine_detection=request.machine_detection,
                machine_detection_timeout_s=request.machine_detection_timeout_s,
                from_=request.from_,
                stream_rng=self._stream_rng,
            )
            call = SimulatedCall(
                new_call_sid(), request.to, request.from_, plan, now, time_scale=self._time_scale
            )
            self._calls[call.sid] = call
            self._attempt_of[call.sid] = request.attempt_id
            for event in plan.events:
                at = now + timedelta(seconds=event.offset_s * self._time_scale)
                heapq.heappush(self._due, _Due(at, next(self._order), call.sid, event))
            self._changed.notify_all()
            return PlacedCall(call.sid, call.status)

    def hang_up(self, provider_call_id: str) -> CallInfo | None:
        with self._changed:
            call = self._call(provider_call_id)
            if call.ended:
                return None
            now = as_utc(self._clock())
            event = call.hang_up(now)
            # Its planned steps will never happen: forget them, so nothing waits for them.
            self._due = [due for due in self._due if due.sid != call.sid]
            heapq.heapify(self._due)
            if event is not None:
                heapq.heappush(self._due, _Due(now, next(self._order), call.sid, event, True))
                self._changed.notify_all()
            return call.info()

    def fetch(self, provider_call_id: str) -> CallInfo:
        with self._changed:
            return self._call(provider_call_id).info()

    def live_calls(self) -> LiveCalls:
        with self._changed:
            ids = frozenset(sid for sid, call in self._calls.items() if not call.ended)
        return LiveCalls(ids, requests=1)

    def find_calls(self, to: str, from_: str, since: datetime) -> list[CallInfo]:
        since = as_utc(since)
        with self._changed:
            found = [
                call.info()
                for call in self._calls.values()
                if call.to == to and call.from_ == from_ and call.created_at >= since
            ]
        return sorted(found, key=lambda info: info.created_at or since)

    def caller_id_status(self, number: str) -> CallerIdStatus:
        return caller_id_status(number, self._numbers)

    def next_due_at(self) -> datetime | None:
        """When the next callback is due, or None when no call has anything left to report."""
        with self._changed:
            return self._due[0].at if self._due else None

    def run_due(self, now: datetime | None = None, *, most: int | None = None) -> int:
        """Deliver every event due by ``now`` (default: the clock), oldest first, or the first
        ``most`` of them.

        Returns how many were delivered. The sink runs outside the lock, so it may place or
        hang up calls; anything it makes due by ``now`` is delivered in the same run. An
        exception from the sink propagates and that event is not delivered again (as a
        webhook that failed for good).
        """
        now = as_utc(now if now is not None else self._clock())
        delivered = 0
        while most is None or delivered < most:
            with self._changed:
                if not self._due or self._due[0].at > now:
                    return delivered
                due = heapq.heappop(self._due)
                call = self._calls[due.sid]
                if not due.applied and not call.apply(due.event, due.at):
                    continue  # the call has already ended
                if self._lost(call, due):
                    continue
                event = call.event(due.event, due.at)
                attempt_id = self._attempt_of[due.sid]
            self._sink.deliver(attempt_id, event)
            delivered += 1
        return delivered

    def close(self) -> None:
        """Stop the delivery thread of a real-time simulator (a no-op in manual mode)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SimulatedProvider:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _lost(self, call: SimulatedCall, due: _Due) -> bool:
        """Whether this event is the end of a call, lost on its way (never for a hang-up we
        asked for: its end is in the answer to the request anyway)."""
        if due.applied or not call.ended or not self._lose_ended_p:
            return False
        if self._loss_rng.random() >= self._lose_ended_p:
            return False
        self.lost_ended += 1
        return True

    def _call(self, provider_call_id: str) -> SimulatedCall:
        call = self._calls.get(provider_call_id)
        if call is None:
            raise TerminalProviderError(
                f"The requested resource Call {provider_call_id} was not found",
                code="20404",
                status=404,
            )
        return call

    def _deliver_forever(self) -> None:
        while True:
            with self._changed:
                if self._closed:
                    return
                wait_s = None
                if self._due:
                    wait_s = (self._due[0].at - as_utc(self._clock())).total_seconds()
                if wait_s is None or wait_s > 0:
                    self._changed.wait(timeout=wait_s)
                    continue
            try:
                self.run_due()
            except Exception:
                # One bad event must not stop every later call's callbacks.
                log.exception("simulated callback delivery failed")
