"""The scheduler process: tick often, reconcile and reap now and then.

Only decides and enqueues; dialing happens in workers (in embedded mode, on this process's
task threads). Several replicas may run at once on PostgreSQL (claims skip rows another
holds); on SQLite run one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime

from dialer.calls import counters
from dialer.calls.dispatch import TickResult
from dialer.calls.sweep import SweepReport
from dialer.concurrency.semaphore.base import ReconcileResult
from dialer.concurrency.truth import SlotTruth, read_truth
from dialer.observability import context, metrics
from dialer.runtime import Runtime

log = logging.getLogger(__name__)

#: Longest wait between ticks while they keep failing, in seconds.
MOST_BACKOFF_S = 10.0


@dataclass(slots=True)
class LoopStats:
    ticks: int = 0
    dispatched: int = 0
    reconciles: int = 0
    sweeps: int = 0
    #: Dial tasks the outbox sent again (a crash lost them, or no worker started them): none
    #: in a run without faults.
    resent: int = 0
    last: TickResult = field(default_factory=TickResult)
    last_sweep: SweepReport | None = None


class SchedulerLoop:
    def __init__(
        self,
        runtime: Runtime,
        *,
        interval_s: float,
        reconcile_interval_s: float,
        sweep_interval_s: float | None = None,
        free_ended_each_tick: bool = False,
    ) -> None:
        """``free_ended_each_tick``: this process's semaphore is the only one (embedded mode),
        and callbacks recorded by another process (the API) end calls without freeing their
        slots here; each tick frees them before dispatching (one query over the holders).
        ``sweep_interval_s``: between sweeps of the provider's live calls (default
        ``DIALER_PROVIDER_SWEEP_S``)."""
        self.runtime = runtime
        self.free_ended_each_tick = free_ended_each_tick
        self.interval_s = interval_s
        self.reconcile_interval_s = reconcile_interval_s
        self.sweep_interval_s = (
            runtime.settings.provider_sweep_s if sweep_interval_s is None else sweep_interval_s
        )
        self._last_sweep: datetime | None = None
        self.stats = LoopStats()
        self._last_reconcile: datetime | None = None
        #: Where the next reconcile of counters starts (they are taken in rotation).
        self._counters_after: str | None = None

    def run_once(self, now: datetime) -> TickResult:
        """One iteration: reconcile and sweep when due, recover the outbox, then dispatch
        (timed; its log lines carry the campaign each round works on)."""
        started_s = time.perf_counter()
        with context.bound():
            result = self._tick(now)
        metrics.scheduler_ticked(time.perf_counter() - started_s, len(result.dispatched))
        return result

    def _tick(self, now: datetime) -> TickResult:
        if (
            self._last_reconcile is None
            or (now - self._last_reconcile).total_seconds() >= self.reconcile_interval_s
        ):
            self._last_reconcile = now
            try:
                self.reconcile(now)
            except Exception:
                # One bad attempt must not stop dispatching for every campaign.
                log.exception("reconcile failed; dispatching anyway")
        elif self.free_ended_each_tick:
            try:
                freed = self.free_ended()
                if freed.changed:
                    log.debug("slots of ended calls freed: %s", freed.summary())
            except Exception:
                log.exception("freeing the slots of ended calls failed; dispatching anyway")
        if self._last_sweep is None or _elapsed_s(self._last_sweep, now) >= self.sweep_interval_s:
            self._last_sweep = now
            try:
                self.stats.last_sweep = self.runtime.sweep(now)
                self.stats.sweeps += 1
            except Exception:
                log.exception("provider sweep failed; dispatching anyway")
        self.stats.resent += len(self.runtime.dispatcher.recover_outbox(now))
        result = self.runtime.dispatcher.tick(now)
        self.stats.ticks += 1
        self.stats.dispatched += len(result.dispatched)
        self.stats.last = result
        return result

    def free_ended(self) -> ReconcileResult:
        """Reconcile the slots with the database: free those of ended attempts, restore those
        of placed calls (see :meth:`~dialer.concurrency.slots.CallSlots.reconcile`)."""
        rt = self.runtime

        def truth(observed: AbstractSet[int]) -> SlotTruth:
            with rt.sessions() as session:
                return read_truth(session, observed)

        return rt.stores.slots.reconcile(truth, rt.calls.call_lease_s)

    def reconcile(self, now: datetime) -> None:
        """Slots from the database truth, stuck attempts from the provider, counters from rows
        (a bounded number of campaigns per pass, in rotation)."""
        rt = self.runtime
        metrics.repaired(metrics.LEASE_REAPED, len(rt.stores.slots.reap()))
        result = self.free_ended()
        # A change is a repair, except in embedded mode, where freeing ended calls' slots is
        # the normal course of things.
        repaired = result.changed and not self.free_ended_each_tick
        if repaired:
            metrics.slots_reconciled(result)
        log.log(
            logging.WARNING if repaired else logging.INFO,
            "semaphore reconciled with the database: %s",
            result.summary(),
        )
        rt.reap(now)
        self._counters_after, drift = counters.reconcile_some(
            rt.sessions, self._counters_after, counters.RECONCILE_BATCH
        )
        metrics.repaired(metrics.COUNTER_DRIFT, sum(1 for d in drift.values() if d))
        self.stats.reconciles += 1

    def run(self, stop: threading.Event, clock: Callable[[], datetime] | None = None) -> None:
        """Tick until ``stop`` is set. A failing tick (Redis or PostgreSQL away) is logged and
        the loop backs off, doubling its wait up to :data:`MOST_BACKOFF_S`; the first tick that
        works brings it back to its interval, with no manual step."""
        clock = clock or self.runtime.clock
        failures = 0
        while not stop.is_set():
            try:
                self.run_once(clock())
            except Exception:
                failures += 1
                log.exception("scheduler tick failed (%d in a row)", failures)
            else:
                if failures:
                    log.warning("scheduler ticks again after %d failed tick(s)", failures)
                failures = 0
            stop.wait(backoff_s(self.interval_s, failures))


def _elapsed_s(since: datetime, now: datetime) -> float:
    return (now - since).total_seconds()


def backoff_s(interval_s: float, failures: int) -> float:
    """The wait before the next tick after ``failures`` failed ticks in a row."""
    if not failures:
        return interval_s
    doubled_s: float = interval_s * 2.0 ** min(failures, 16)
    return min(doubled_s, max(MOST_BACKOFF_S, interval_s))
