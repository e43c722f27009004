"""The embedded task queue: dial and dispatch work on a thread pool inside this process.

For the embedded default (no Redis): one process runs the scheduler, the "workers" and the
simulator. Countdowns are timers; nothing survives the process, which is why it is only for a
single machine (the outbox and the reaper still recover attempts after a restart).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


class InProcessQueue:
    """A :class:`~dialer.runtime.TaskQueue` on threads; bind the runtime after building it."""

    def __init__(self, workers: int = 8) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dialer-task")
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.dial_one: Callable[[int], object] | None = None
        self.dispatch_one: Callable[[str], object] | None = None
        #: Campaigns with a dispatch waiting to start: more requests for them coalesce.
        self._dispatch_pending: set[str] = set()

    def bind(
        self, dial_one: Callable[[int], object], dispatch_one: Callable[[str], object]
    ) -> None:
        self.dial_one, self.dispatch_one = dial_one, dispatch_one

    def dial(self, attempt_ids: Sequence[int], countdown_s: float = 0.0) -> None:
        for attempt_id in attempt_ids:
            self._later(countdown_s, self._run_dial, attempt_id)

    def dispatch(self, campaign_id: str) -> None:
        """Ask for a dispatch of the campaign; requests made before one starts share it."""
        with self._lock:
            if campaign_id in self._dispatch_pending:
                return
            self._dispatch_pending.add(campaign_id)
        self._submit(self._run_dispatch, campaign_id)

    def _run_dial(self, attempt_id: int) -> None:
        assert self.dial_one is not None
        try:
            self.dial_one(attempt_id)
        except Exception:
            log.exception("dial task for attempt %s failed", attempt_id)

    def _run_dispatch(self, campaign_id: str) -> None:
        assert self.dispatch_one is not None
        with self._lock:
            # Cleared as the dispatch starts: a slot freed from now on asks for another.
            self._dispatch_pending.discard(campaign_id)
        try:
            self.dispatch_one(campaign_id)
        except Exception:
            log.exception("dispatch for campaign %s failed", campaign_id)

    def _submit(self, fn: Callable[..., None], arg: object) -> None:
        with self._lock:
            if not self._closed:
                self._pool.submit(fn, arg)

    def _later(self, delay_s: float, fn: Callable[..., None], arg: object) -> None:
        if delay_s <= 0:
            self._submit(fn, arg)
            return

        def fire() -> None:
            with self._lock:
                self._timers.discard(timer)
            self._submit(fn, arg)

        timer = threading.Timer(delay_s, fire)
        timer.daemon = True
        with self._lock:
            if self._closed:
                return
            self._timers.add(timer)
        timer.start()

    def close(self, wait: bool = True) -> None:
        with self._lock:
            self._closed = True
            timers, self._timers = set(self._timers), set()
        for timer in timers:
            timer.cancel()
        self._pool.shutdown(wait=wait, cancel_futures=not wait)


class RecordOnlyQueue:
    """The task queue of an embedded deployment's API process: nothing is dialed or dispatched
    from it.

    The embedded semaphore lives in the scheduler process, which is the only one that may
    dial. The API records the provider's callbacks; the slot of a call they end is freed by the
    scheduler at its next tick, which then refills it (see ``SchedulerLoop``). Were the API to
    dispatch, it would count slots in a semaphore of its own, empty, and place calls beyond
    ``max_concurrency``.
    """

    def dial(self, attempt_ids: Sequence[int], countdown_s: float = 0.0) -> None:
        log.debug("embedded API: dial of %s left to the scheduler process", list(attempt_ids))

    def dispatch(self, campaign_id: str) -> None:
        log.debug("embedded API: campaign %s is refilled by the scheduler process", campaign_id)


def bind_runtime(queue: InProcessQueue, runtime: object) -> None:
    """Point the queue at a runtime's dialer and dispatcher."""
    from dialer.runtime import Runtime

    assert isinstance(runtime, Runtime)
    queue.bind(runtime.dialer.dial, runtime.refill)
