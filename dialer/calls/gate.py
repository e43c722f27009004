"""Whether a call may start now: its slots held for the whole call, and its pace taken.

The slot was taken for the queue's short lease when the attempt was claimed; before the dial
it is extended to the call's lease (ring time + time limit + callback margin) or, if the
lease lapsed meanwhile, taken again under the limits (all layers or none). Then the calls per
second are taken, right before the dial: the provider account's, shared fairly between the
tenants with calls waiting (:mod:`dialer.concurrency.rate.fair`), and the caller number's and
the tenant's caps, all or none.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dialer.calls.config import CallConfig
from dialer.calls.jobs import DialJob
from dialer.calls.rebuild import SlotRebuilder
from dialer.calls.results import DialResult
from dialer.concurrency.keys import tenant_pace
from dialer.concurrency.rate.base import Rate
from dialer.concurrency.rate.fair import TenantShare
from dialer.concurrency.stores import ConcurrencyStores
from dialer.errors import SlotsLost
from dialer.observability import metrics


class StartGate:
    def __init__(
        self,
        stores: ConcurrencyStores,
        config: CallConfig,
        sleep: Callable[[float], None] = time.sleep,
        rebuilder: SlotRebuilder | None = None,
    ) -> None:
        """``rebuilder``: restores the slots when their store lost them (without one, such a
        store only refuses)."""
        self._rebuilder = rebuilder
        self._slots = stores.slots
        self._pacer = stores.pacer
        self._config = config
        self._sleep = sleep

    def hold_slot(self, job: DialJob) -> bool:
        """Extend the job's slots to the call's lease, or take them again; False if none is
        free. :class:`~dialer.errors.SlotsLost` when their store lost its holders: the caller
        rebuilds it (:meth:`rebuild`) once outside its transaction."""
        return self._slots.hold(job.claim, self._config.call_lease_s)

    def hold_slot_rebuilding(self, job: DialJob) -> bool:
        """:meth:`hold_slot`, rebuilding the store first if it lost its holders (for a caller
        holding no database transaction); False when it still cannot."""
        try:
            return self.hold_slot(job)
        except SlotsLost:
            if not self.rebuild():
                return False
        try:
            return self.hold_slot(job)
        except SlotsLost:
            return False

    def rebuild(self) -> bool:
        """Restore the slots after their store lost them; never inside a transaction that
        holds a queued attempt's row (the rebuild waits for those). False if it could not."""
        return self._rebuilder is not None and self._rebuilder.rebuild()

    def pace(self, job: DialJob) -> float:
        """Take the job's pace: 0.0 when taken, else the seconds to wait (nothing taken).

        A wait of up to ``pace_wait_here_s`` is waited out here, once: at a high pace calls
        that start together are spaced by milliseconds, far less than a task sent again. The
        caller's transaction keeps its row locks meanwhile (the attempt's, or a claim's
        recipients', which other claims skip), for that long at most.
        """
        rates, share = self.rates(job)
        wait_s = self._pacer.try_acquire(rates, share)
        metrics.paced(wait_s, in_place_s=self._config.pace_wait_here_s)
        if 0 < wait_s <= self._config.pace_wait_here_s:
            self._sleep(wait_s)
            wait_s = self._pacer.try_acquire(rates, share)
        return wait_s

    def take_pace(self, job: DialJob) -> bool:
        """Take the pace of a call about to start; False (nothing taken) when it must wait."""
        return self.pace(job) == 0

    def admit(self, job: DialJob) -> tuple[DialResult, float] | None:
        """Hold the job's slot for the call and take its pace: None when the call may go now,
        else (why not, seconds until its task tries again). ``SLOTS_LOST``: the caller rebuilds
        the store after its transaction."""
        try:
            held = self.hold_slot(job)
        except SlotsLost:
            return DialResult.SLOTS_LOST, 0.0
        if not held:
            return DialResult.WAITING_FOR_SLOT, self._config.slot_retry_s
        wait_s = self.pace(job)
        if wait_s > 0:
            return DialResult.PACED, wait_s
        return None

    def rates(self, job: DialJob) -> tuple[tuple[Rate, ...], TenantShare]:
        """The paces one call of ``job`` must pass (its provider account's, its number's, its
        tenant's cap), and its tenant's share of the account."""
        config = self._config
        return tenant_pace(
            config.account,
            job.tenant_id,
            job.from_,
            account_cps=config.account_cps,
            caller_cps=config.caller_cps,
            tenant_cps=job.tenant_cps,
        )
