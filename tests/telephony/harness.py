"""One way to drive any provider adapter in tests: place calls, let time pass, read events.

The simulator runs on an injected clock that jumps from one due callback to the next; the
Twilio adapter runs against the carrier simulator on 127.0.0.1 in scaled real time.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from dialer.carrier import RunningCarrier
from dialer.clock import utc_now
from dialer.telephony.base import CallRequest, TelephonyProvider
from dialer.telephony.events import ProviderEvent
from dialer.telephony.simulator import SimulatedProvider
from dialer.telephony.twilio.adapter import TwilioProvider
from tests.carrier.support import Receiver, wait_until

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class RecordingSink:
    """An EventSink that keeps what it is given, in order."""

    deliveries: list[tuple[str, ProviderEvent]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def deliver(self, attempt_id: str, event: ProviderEvent) -> None:
        with self._lock:
            self.deliveries.append((attempt_id, event))

    def events(self, attempt_id: str) -> list[ProviderEvent]:
        with self._lock:
            return [e for a, e in self.deliveries if a == attempt_id]


class Harness(Protocol):
    @property
    def provider(self) -> TelephonyProvider: ...

    def request(self, **overrides: object) -> CallRequest: ...

    def now(self) -> datetime:
        """The provider's idea of now, for ``find_calls``."""
        ...

    def settle(self, condition: Callable[[], bool]) -> None:
        """Let calls progress until ``condition`` holds (fail if it never does)."""
        ...

    def events(self, attempt_id: str) -> list[ProviderEvent]: ...


class SimulatorHarness:
    """Manual mode: the clock jumps to each due callback in turn, never sleeping."""

    def __init__(self, provider: SimulatedProvider, clock: FakeClock, sink: RecordingSink) -> None:
        self.provider = provider
        self.clock = clock
        self._sink = sink
        self._attempts = itertools.count(1)

    def request(self, **overrides: object) -> CallRequest:
        fields: dict[str, object] = {
            "attempt_id": f"attempt-{next(self._attempts)}",
            "campaign_id": "campaign-1",
            "to": "+15551230001",
            "from_": "+15550000001",
            "time_limit_s": 3600,
        }
        fields.update(overrides)
        return CallRequest(**fields)  # type: ignore[arg-type]

    def now(self) -> datetime:
        return self.clock.now

    def settle(self, condition: Callable[[], bool]) -> None:
        while not condition():
            due = self.provider.next_due_at()
            if due is None:
                raise AssertionError("condition not met, and no call has anything left to do")
            self.clock.now = max(due, self.clock.now)
            self.provider.run_due()

    def drain(self) -> None:
        """Play every call to its end."""
        while (due := self.provider.next_due_at()) is not None:
            self.clock.now = max(due, self.clock.now)
            self.provider.run_due()

    def events(self, attempt_id: str) -> list[ProviderEvent]:
        return self._sink.events(attempt_id)


class CarrierHarness:
    """The Twilio adapter against the carrier simulator, in scaled real time."""

    def __init__(self, running: RunningCarrier, receiver: Receiver) -> None:
        self.provider = TwilioProvider(
            running.account_sid,
            running.auth_token,
            webhooks=receiver.webhooks,
            base_url=running.base_url,
            http_timeout_s=5,
        )
        self.running = running
        self._receiver = receiver

    def request(self, **overrides: object) -> CallRequest:
        return self._receiver.request(**overrides)

    def now(self) -> datetime:
        return utc_now()

    def settle(self, condition: Callable[[], bool]) -> None:
        wait_until(condition)

    def events(self, attempt_id: str) -> list[ProviderEvent]:
        return self._receiver.events(attempt_id)
