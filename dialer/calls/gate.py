"""Whether a call may start now: its slots held for the whole call, and its pace taken.

The slot was taken for the queue's short lease when the attempt was claimed; before the dial
it is extended to the call's lease (ring time + time limit + callback margin) or, if the
lease lapsed meanwhile, taken again under the limits (all layers or none). Then the calls per
second: the provider account's, shared fairly between the tenants with calls waiting
(:mod:`dialer.concurrency.rate.fair`), and the caller number's and the tenant's caps, all or
none.

The pace is reserved when the call is claimed (:meth:`StartGate.reserve`,
:mod:`dialer.concurrency.rate.permits`): the dispatch claims only the calls that may start
within ``pace_ahead_s`` and sends each dial task with the wait to its own instant, so the
task finds its start waiting for it (:meth:`StartGate.pace` uses the permit). A task without
a usable permit (it lapsed: the task came late; or none was reserved) takes its pace here as
before, and one that must wait reserves its instant and comes back once, at that instant.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from dialer.calls.config import CallConfig
from dialer.calls.jobs import DialJob
from dialer.calls.rebuild import SlotRebuilder
from dialer.calls.results import DialResult
from dialer.concurrency.keys import permit_key, tenant_pace
from dialer.concurrency.rate.base import Rate
from dialer.concurrency.rate.fair import TenantShare
from dialer.concurrency.rate.permits import Ask
from dialer.concurrency.stores import ConcurrencyStores
from dialer.errors import SlotsLost
from dialer.observability import metrics

#: Furthest ahead a dial task that must wait reserves its start, in seconds (its task comes
#: back with that countdown: far below the queue's visibility timeout).
MOST_AHEAD_S = 60.0


class PacedCall(Protocol):
    """What a call's pace depends on (a :class:`~dialer.calls.jobs.DialJob` is one)."""

    @property
    def recipient_id(self) -> int: ...

    @property
    def tenant_id(self) -> str: ...

    @property
    def from_(self) -> str | None: ...

    @property
    def tenant_cps(self) -> float | None: ...


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

    @property
    def most_ahead(self) -> int:
        """The most starts the account admits within ``pace_ahead_s``: more than any one
        claim could be given (a claim asks for no more)."""
        return math.ceil(self._config.pace_ahead_s * self._config.account_cps) + 1

    def reserve(self, calls: Sequence[PacedCall]) -> list[float | None]:
        """Reserve the starts of calls of one tenant about to be claimed, in order, within
        ``pace_ahead_s``: each one's wait in seconds (its dial task's countdown), None for
        one the pace lets start no sooner (not to be claimed now; nothing taken for it)."""
        if not calls:
            return []
        if len({call.tenant_id for call in calls}) > 1:
            raise ValueError("one reservation is for the calls of one tenant")
        asks: list[Ask] = []
        share: TenantShare | None = None
        for call in calls:
            rates, share = self.rates(call)
            asks.append(Ask(self._permit_key(call), rates))
        waits = self._pacer.reserve(
            asks, share, ahead_s=self._config.pace_ahead_s, late_s=self._config.permit_late_s
        )
        metrics.reserved(waits)
        return waits

    def pace(self, job: PacedCall) -> float:
        """Take the job's pace: 0.0 when taken, else the seconds to wait (nothing taken).

        The start reserved with its claim is used when it is due. Without one (it lapsed, or
        none was reserved) the pace is taken now; a call that must wait reserves its instant,
        so that its task, sent back with that wait, finds its start there.

        A wait of up to ``pace_wait_here_s`` is waited out here, once: at a high pace calls
        that start together are spaced by milliseconds, far less than a task sent again. The
        caller's transaction keeps its row locks meanwhile (the attempt's, or a claim's
        recipients', which other claims skip), for that long at most.
        """
        key = self._permit_key(job)
        reserved_s = self._redeem(key)
        if reserved_s is not None:
            return reserved_s
        rates, share = self.rates(job)
        wait_s = self._pacer.try_acquire(rates, share)
        metrics.paced(wait_s, in_place_s=self._config.pace_wait_here_s)
        if 0 < wait_s <= self._config.pace_wait_here_s:
            self._sleep(wait_s)
            wait_s = self._pacer.try_acquire(rates, share)
        if wait_s == 0:
            return 0.0
        ask = Ask(key, rates)
        (ahead_s,) = self._pacer.reserve(
            [ask], share, ahead_s=MOST_AHEAD_S, late_s=self._config.permit_late_s
        )
        if ahead_s is None:
            return wait_s
        if ahead_s <= self._config.pace_wait_here_s:
            used_s = self._redeem(key)
            return wait_s if used_s is None else used_s
        return ahead_s

    def _redeem(self, key: str) -> float | None:
        """Use the permit under ``key``, waiting here for it if it is due within
        ``pace_wait_here_s``: 0.0 used, > 0 the wait to its instant, None no permit."""
        wait_s = self._pacer.redeem(key)
        if wait_s is not None and 0 < wait_s <= self._config.pace_wait_here_s:
            self._sleep(wait_s)
            wait_s = self._pacer.redeem(key)
        return wait_s

    def _permit_key(self, call: PacedCall) -> str:
        return permit_key(self._config.account, call.recipient_id)

    def take_pace(self, job: PacedCall) -> bool:
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

    def rates(self, job: PacedCall) -> tuple[tuple[Rate, ...], TenantShare]:
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
