"""The scheduler process: tick often, reconcile and reap now and then.

Only decides and enqueues; dialing happens in workers. Several replicas may run at once on
PostgreSQL (claims skip rows another holds); on SQLite run one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from dialer.concurrency.semaphore.base import ReconcileResult, Truth, reconcile_from
from dialer.concurrency.truth import database_truth
from dialer.db.models import Campaign
from dialer.policy.campaign_state import CampaignStatus
from dialer.runtime import Runtime
from dialer.services import counters
from dialer.services.dispatch import TickResult
from dialer.services.reaper import reap_stuck

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LoopStats:
    ticks: int = 0
    dispatched: int = 0
    reconciles: int = 0
    last: TickResult = field(default_factory=TickResult)


class SchedulerLoop:
    def __init__(
        self,
        runtime: Runtime,
        *,
        interval_s: float,
        reconcile_interval_s: float,
        free_ended_each_tick: bool = False,
    ) -> None:
        """``free_ended_each_tick``: this process's semaphore is the only one (embedded mode),
        and callbacks recorded by another process (the API) end calls without freeing their
        slots here; each tick frees them before dispatching (one query over the holders)."""
        self.runtime = runtime
        self.free_ended_each_tick = free_ended_each_tick
        self.interval_s = interval_s
        self.reconcile_interval_s = reconcile_interval_s
        self.stats = LoopStats()
        self._last_reconcile: datetime | None = None

    def run_once(self, now: datetime) -> TickResult:
        """One iteration: reconcile when due, recover the outbox, then dispatch."""
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
        self.runtime.dispatcher.recover_outbox(now)
        result = self.runtime.dispatcher.tick(now)
        self.stats.ticks += 1
        self.stats.dispatched += len(result.dispatched)
        self.stats.last = result
        return result

    def free_ended(self) -> ReconcileResult:
        """Reconcile the semaphore with the database: free the slots of ended attempts, restore
        those of placed calls (see :func:`reconcile_from`)."""
        rt = self.runtime
        semaphore = rt.stores.semaphore

        def truth(observed: AbstractSet[str]) -> Truth:
            with rt.sessions() as session:
                return database_truth(session, observed, prefix=semaphore.prefix)

        return reconcile_from(semaphore, truth, rt.dialer.config.call_lease_s)

    def reconcile(self, now: datetime) -> None:
        """Slots from the database truth, stuck attempts from the provider, counters from rows."""
        rt = self.runtime
        rt.stores.semaphore.reap()
        result = self.free_ended()
        # A change is a repair, except in embedded mode, where freeing ended calls' slots is
        # the normal course of things.
        repaired = result.changed and not self.free_ended_each_tick
        log.log(
            logging.WARNING if repaired else logging.INFO,
            "semaphore reconciled with the database: %s",
            result.summary(),
        )
        reap_stuck(rt.dialer, now, unplaced_after_s=rt.settings.reap_unplaced_after_s)
        with rt.sessions() as session:
            running = list(
                session.scalars(
                    sa.select(Campaign.id).where(
                        Campaign.status.in_([CampaignStatus.RUNNING, CampaignStatus.PAUSED])
                    )
                )
            )
        for campaign_id in running:
            with rt.sessions() as session, session.begin():
                counters.reconcile(session, campaign_id)
        self.stats.reconciles += 1

    def run(self, stop: threading.Event, clock: Callable[[], datetime] | None = None) -> None:
        """Tick until ``stop`` is set; a failing tick is logged and the loop goes on."""
        clock = clock or self.runtime.clock
        while not stop.is_set():
            try:
                self.run_once(clock())
            except Exception:
                log.exception("scheduler tick failed")
            stop.wait(self.interval_s)
