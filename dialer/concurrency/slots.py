"""Call slots: the lease semaphore as the rest of the dialer sees it, keyed by scope.

Callers speak of attempts and their :class:`~dialer.concurrency.keys.SlotScope` (campaign,
tenant, caller number) and :class:`~dialer.concurrency.keys.SlotLimits`; this class builds the
keys under its semaphore's prefix and the holder ids, so no key or prefix leaves
:mod:`dialer.concurrency`. The protocol the scheduler and workers follow is in the package
docstring; the semaphore's own invariants in :mod:`dialer.concurrency.semaphore.base`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from dialer.concurrency.keys import (
    SlotLimits,
    SlotScope,
    attempt_id_of,
    campaign_key,
    holder_id,
    layered_limits,
)
from dialer.concurrency.semaphore.base import (
    Admission,
    LeaseSemaphore,
    Limit,
    Reaped,
    ReconcileResult,
    Truth,
    rebuild_from,
    reconcile_from,
)
from dialer.concurrency.truth import SlotTruth

#: Reads the database's truth about the attempts a snapshot observed holding slots.
ReadSlotTruth = Callable[[AbstractSet[int]], SlotTruth]
#: The campaign id :meth:`CallSlots.warm` counts: no campaign has it.
_NO_CAMPAIGN = ""


@dataclass(frozen=True, slots=True)
class SlotClaim:
    """One attempt asking for its slots: in every key of ``scope``, under ``limits``."""

    attempt_id: int
    scope: SlotScope
    limits: SlotLimits


class CallSlots:
    """Slots of call attempts in one :class:`~dialer.concurrency.semaphore.base.LeaseSemaphore`.

    Every method is one round trip to the store (one script on Redis), but :meth:`hold` (a
    renew, and an acquire when the lease lapsed) and :meth:`reconcile` (a snapshot, then the
    reconcile). Durations in seconds.
    """

    def __init__(self, semaphore: LeaseSemaphore) -> None:
        self._semaphore = semaphore
        self._prefix = semaphore.prefix

    @property
    def semaphore(self) -> LeaseSemaphore:
        """The store underneath (inspection: snapshots, the expired-lease total)."""
        return self._semaphore

    def in_use(self, campaign_id: str) -> int:
        """Slots of the campaign held now (leases not expired)."""
        return self._semaphore.count(campaign_key(campaign_id, self._prefix))

    def holders(self, campaign_id: str) -> set[int]:
        """The attempts holding slots of the campaign now (leases not expired)."""
        found = self._semaphore.holders(campaign_key(campaign_id, self._prefix))
        return {i for i in map(attempt_id_of, found) if i is not None}

    def acquire_many(self, claims: Sequence[SlotClaim], lease_s: float) -> list[Admission]:
        """Take each claim's slots in every layer, or none of them, in order, in one round trip
        (see :meth:`~dialer.concurrency.semaphore.base.LeaseSemaphore.acquire_many`)."""
        requests = [(holder_id(c.attempt_id), self._limits(c)) for c in claims]
        return self._semaphore.acquire_many(requests, lease_s)

    def hold(self, claim: SlotClaim, lease_s: float) -> bool:
        """Extend the claim's leases to ``lease_s`` from now, or, if they lapsed (or a reconcile
        removed them), take the slots again under its limits: all layers or none. False when
        no slot is free."""
        holder = holder_id(claim.attempt_id)
        if self._semaphore.renew(holder, claim.scope.keys(self._prefix), lease_s):
            return True
        return bool(self._semaphore.acquire(holder, self._limits(claim), lease_s))

    def release(self, attempt_id: int, scope: SlotScope) -> bool:
        """Give the attempt's slots back (idempotent). True if it held an unexpired one."""
        return self._semaphore.release(holder_id(attempt_id), scope.keys(self._prefix))

    def reap(self) -> list[Reaped]:
        """Remove and report every expired lease."""
        return self._semaphore.reap()

    def reconcile(self, read_truth: ReadSlotTruth, lease_s: float) -> ReconcileResult:
        """Bring the slots in line with the database, never freeing a real call's.

        Snapshots the holders first, then reads the truth of the attempts it observed, then
        reconciles against that snapshot (see
        :func:`~dialer.concurrency.semaphore.base.reconcile_from`): an attempt released after
        the snapshot is not added back, and one admitted after it is not touched; admitted
        attempts whose rows are not committed when the database is read are not removed either
        (only ended ones are). Placed calls missing from the store (Redis lost its data) are
        added with ``lease_s``. Holders that name no attempt are left to their leases.
        """

        return reconcile_from(self._semaphore, self._keyed_reader(read_truth), lease_s)

    def _keyed_reader(self, read_truth: ReadSlotTruth) -> Callable[[AbstractSet[str]], Truth]:
        def keyed(observed: AbstractSet[str]) -> Truth:
            attempts = {i for i in map(attempt_id_of, observed) if i is not None}
            return self._keyed(read_truth(attempts))

        return keyed

    def rebuild(self, read_truth: ReadSlotTruth, lease_s: float) -> ReconcileResult:
        """After the store lost its holders (:class:`~dialer.errors.SlotsLost`): restore the
        placed calls' from the database, then admit again (see
        :func:`~dialer.concurrency.semaphore.base.rebuild_from`). ``read_truth`` must wait for
        the dials under way (``read_truth(..., after_dials=True)``)."""
        return rebuild_from(self._semaphore, self._keyed_reader(read_truth), lease_s)

    def warm(self) -> None:
        """Load the store's scripts (the first count loads the count script)."""
        self.in_use(_NO_CAMPAIGN)

    def _limits(self, claim: SlotClaim) -> tuple[Limit, ...]:
        limits = claim.limits
        return layered_limits(
            claim.scope, limits.campaign, limits.tenant, limits.caller, prefix=self._prefix
        )

    def _keyed(self, truth: SlotTruth) -> Truth:
        live: dict[str, set[str]] = {}
        for attempt_id, scope in truth.live.items():
            holder = holder_id(attempt_id)
            for key in scope.keys(self._prefix):
                live.setdefault(key, set()).add(holder)
        return Truth(live=live, ended=frozenset(holder_id(i) for i in truth.ended))
