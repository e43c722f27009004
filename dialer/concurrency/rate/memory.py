"""The in-memory call pacer: embedded mode, and the reference for the Redis one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from dialer.concurrency.rate.base import Rate, gcra_take, gcra_wait_s


class MemoryRateLimiter:
    """A :class:`~dialer.concurrency.rate.base.CallRateLimiter` for one process.

    ``clock`` returns seconds (any epoch, never going backwards); tests inject their own.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        #: key -> theoretical arrival time (clock seconds).
        self._tat: dict[str, float] = {}

    def try_acquire(self, rates: Sequence[Rate]) -> float:
        with self._lock:
            now = self._clock()
            wait_s = max(
                (gcra_wait_s(rate, self._tat.get(rate.key), now) for rate in rates), default=0.0
            )
            if wait_s > 0:
                return wait_s
            for rate in rates:
                self._tat[rate.key] = gcra_take(rate, self._tat.get(rate.key), now)
            # Idle keys would admit anyway: forget them so the dict does not grow forever.
            for key in [key for key, tat in self._tat.items() if tat <= now]:
                del self._tat[key]
        return 0.0
