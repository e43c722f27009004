"""The simulator's events, delivered in process as webhooks would be: in parallel across calls,
in order within one call.

:class:`EventLanes` is the sink the simulator sends to (it only queues); :class:`LaneReaders`,
started once whatever ingests the events exists, takes them in: one thread per lane, a call's
events always on the same lane, so one slow ingest does not hold up every other call's events,
as it would not behind real webhooks (a provider's callbacks for different calls arrive in
parallel and several API workers take them).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from dialer.telephony.events import ProviderEvent

log = logging.getLogger(__name__)

#: Simulated events ingested at once.
LANES = 4
_STOP = None


class EventLanes:
    """An :class:`~dialer.telephony.events.EventSink` that queues each call's events on its lane."""

    def __init__(self, lanes: int = LANES) -> None:
        self.queues: list[queue.SimpleQueue[tuple[str, ProviderEvent] | None]] = [
            queue.SimpleQueue() for _ in range(lanes)
        ]

    def deliver(self, attempt_id: str, event: ProviderEvent) -> None:
        self.queues[hash(attempt_id) % len(self.queues)].put((attempt_id, event))

    def close(self) -> None:
        """No more events: each lane ends once it has taken in what was sent before."""
        for lane in self.queues:
            lane.put(_STOP)


class LaneReaders:
    """One thread per lane of ``lanes``, handing each event to ``handle``."""

    def __init__(self, lanes: EventLanes, handle: Callable[[str, ProviderEvent], object]) -> None:
        self._lanes = lanes
        self._handle = handle
        self._threads = [
            threading.Thread(
                target=self._read, args=(lane,), name=f"simulated-webhooks-{n}", daemon=True
            )
            for n, lane in enumerate(lanes.queues)
        ]
        for thread in self._threads:
            thread.start()

    def _read(self, lane: queue.SimpleQueue[tuple[str, ProviderEvent] | None]) -> None:
        while (item := lane.get()) is not _STOP:
            assert item is not None
            attempt_id, event = item
            try:
                self._handle(attempt_id, event)
            except Exception:
                log.exception("simulated event for attempt %s not ingested", attempt_id)

    def close(self, timeout_s: float = 10.0) -> None:
        """Take in what was sent, then stop (call after the simulator stopped sending)."""
        self._lanes.close()
        for thread in self._threads:
            thread.join(timeout=timeout_s)
