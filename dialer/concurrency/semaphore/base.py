"""The lease semaphore's interface and the values it trades in.

A *key* is a counting semaphore: a set of *holders* (attempt ids), each with a lease expiry.
Invariants every backend keeps:

- A holder whose lease has expired is never counted, even before it is removed.
- Every expired lease is reported exactly once, when it is removed, whichever operation
  removes it (``reap``, ``reconcile``, or the holder's own ``release`` or ``acquire``): one
  log line naming the holder and the key, and one more in :attr:`LeaseSemaphore.reaped_total`.
  Acquires leave other holders' expired leases to ``reap``, so call it periodically.
- ``acquire`` never takes a slot that would make a capped key hold more than the limit passed
  to that call; only ``reconcile`` may push a key above its limit (the calls are real).
- A store that lost its holders (Redis restarted empty, flushed, evicted) admits and renews
  nothing, raising :class:`~dialer.errors.SlotsLost`, until :func:`rebuild_from` restored the
  holders of the calls in flight from the database: it never admits a call over a limit on
  the strength of holders it forgot.
- ``reconcile`` removes a holder only when the database says its attempt has ended. A holder
  the database does not know (its row not committed yet, or never) keeps its slot until its
  lease expires: the dispatcher takes the slot *before* the row commits, so "not in the
  database" may mean "not visible yet", and freeing that slot would let a second call take it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from dialer.errors import SlotsLost

log = logging.getLogger("dialer.concurrency")

Holders = Mapping[str, AbstractSet[str]]
"""Key -> holder ids (what a snapshot observed, or what the database says should be held)."""


@dataclass(frozen=True, slots=True)
class Truth:
    """What the database says about the holders, for :meth:`LeaseSemaphore.reconcile`.

    ``live``: key -> the attempts in flight that should hold a slot in it. ``ended``: holder
    ids whose attempt has ended (their slots may go). A holder in neither is *unknown*: its
    row is not committed yet (or never will be), so reconcile leaves it to its lease.
    """

    live: Holders = field(default_factory=dict)
    ended: AbstractSet[str] = frozenset()


ReadTruth = Callable[[AbstractSet[str]], Truth]
"""Reads the :class:`Truth`, given every holder id a snapshot observed (to say which ended)."""


@dataclass(frozen=True, slots=True)
class Limit:
    """One layer of an acquire: ``key`` may hold at most ``max_holders``.

    ``max_holders`` None means the key is tracked (counted, reconciled) but not capped.
    """

    key: str
    max_holders: int | None

    def __post_init__(self) -> None:
        if self.max_holders is not None and self.max_holders < 0:
            raise ValueError(f"max_holders must be >= 0 or None, not {self.max_holders}")


@dataclass(frozen=True, slots=True)
class Admission:
    """What ``acquire`` decided; true when the slots were taken.

    ``full`` names the first key (in the order the limits were given) that refused.
    """

    granted: bool
    full: str | None = None

    def __bool__(self) -> bool:
        return self.granted


class Reaped(NamedTuple):
    """A lease that expired and was removed from ``key``."""

    key: str
    holder: str


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    """What a reconcile changed: holders added and removed, per key, and leases reaped."""

    added: Mapping[str, frozenset[str]] = field(default_factory=dict)
    removed: Mapping[str, frozenset[str]] = field(default_factory=dict)
    reaped: tuple[Reaped, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.reaped)

    def summary(self, per_key: int = 10) -> str:
        """One line: the holders added (+) and removed (-) per key, ``per_key`` at most each."""

        def listed(holders: frozenset[str]) -> str:
            shown = sorted(holders)[:per_key]
            more = len(holders) - len(shown)
            return str(shown) + (f" and {more} more" if more else "")

        parts = [f"{key}: +{listed(self.added[key])}" for key in sorted(self.added)]
        parts += [f"{key}: -{listed(self.removed[key])}" for key in sorted(self.removed)]
        return "; ".join(parts) or "no change"


class LeaseSemaphore(Protocol):
    """Counting semaphores with leased holders; every method is atomic.

    Durations are in seconds. Holder ids are attempt ids, so ``release`` and ``renew`` are
    idempotent and a holder can only ever remove itself. Keys must start with the backend's
    ``prefix``: reconcile and reap-all find keys by it.
    """

    @property
    def prefix(self) -> str: ...

    @property
    def reaped_total(self) -> int:
        """Expired leases this object has removed and reported since it was created."""
        ...

    def acquire(self, holder: str, limits: Sequence[Limit], lease_s: float) -> Admission:
        """Take a slot in every key of ``limits`` for ``lease_s``, or none at all.

        A key where ``holder`` already holds an unexpired slot does not count against it (a
        task delivered twice takes one slot); its lease is only ever lengthened.
        """
        ...

    def acquire_many(
        self, requests: Sequence[tuple[str, Sequence[Limit]]], lease_s: float
    ) -> list[Admission]:
        """``acquire`` for each (holder, limits) in order, in one round trip; one result each.

        For the scheduler, which admits many attempts per tick. Each request is all or
        nothing on its own; the batch as a whole is not. Requests are decided in order.
        """
        ...

    def renew(self, holder: str, keys: Sequence[str], lease_s: float) -> bool:
        """Extend the holder's leases to at least ``lease_s`` from now.

        False, and nothing changed, when the holder no longer holds an unexpired slot in every
        key (it expired or was reconciled away): the caller must ``acquire`` again.
        """
        ...

    def release(self, holder: str, keys: Sequence[str]) -> bool:
        """Give the holder's slots back. True if it held an unexpired slot in any key."""
        ...

    def release_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[bool]:
        """``release`` for each (holder, keys), in one round trip; one result each."""
        ...

    def count(self, key: str) -> int:
        """Holders of ``key`` whose lease has not expired."""
        ...

    def holders(self, key: str) -> set[str]:
        """The holders of ``key`` whose lease has not expired."""
        ...

    def snapshot(self) -> dict[str, set[str]]:
        """Every key under the prefix with its unexpired holders (keys with none left out)."""
        ...

    def reap(self, keys: Iterable[str] | None = None) -> list[Reaped]:
        """Remove and report the expired leases of ``keys`` (every key under the prefix)."""
        ...

    def reconcile(
        self, truth: Truth, lease_s: float, *, observed: Holders | None = None
    ) -> ReconcileResult:
        """Bring the holders in line with the database, without ever freeing a real call's slot.

        Removes from a key the holders that were ``observed`` there, are in ``truth.ended``
        and not in ``truth.live`` for that key. Adds, with a lease of ``lease_s``, holders of
        ``truth.live`` that were not observed and are still absent, even above the key's limit
        (they are real calls, e.g. after Redis lost its data). Holders the database does not
        know are left alone: they expire with their lease, and the reap reports them.
        ``observed`` defaults to a snapshot taken now; pass one taken *before* reading the
        database (see :func:`reconcile_from`) so holders that come and go while the database
        is read are left alone.
        """
        ...

    def begin_rebuild(self) -> str:
        """Start rebuilding a store that lost its holders; the token to finish with."""
        ...

    def finish_rebuild(self, token: str) -> bool:
        """Mark the store rebuilt, so it admits again; False (still unbuilt) when it lost its
        data again since :meth:`begin_rebuild`, or another rebuild began after this one."""
        ...


def rebuild_from(
    semaphore: LeaseSemaphore, read_truth: ReadTruth, lease_s: float
) -> ReconcileResult:
    """Restore the holders of the calls in flight after the store lost them, then admit again.

    ``read_truth`` must see every call a holder admitted before the loss: the dial that
    renewed its slot just before the loss commits its attempt as dialing afterwards (see
    :func:`dialer.concurrency.truth.read_truth`, which waits for such dials). Raises
    :class:`~dialer.errors.SlotsLost` when the store lost its data again meanwhile.
    """
    token = semaphore.begin_rebuild()
    result = reconcile_from(semaphore, read_truth, lease_s)
    if not semaphore.finish_rebuild(token):
        raise SlotsLost("the semaphore's store lost its data again while it was rebuilt")
    return result


def reconcile_from(
    semaphore: LeaseSemaphore, read_truth: ReadTruth, lease_s: float
) -> ReconcileResult:
    """Snapshot the semaphore, then read the truth of the observed holders, then reconcile.

    The order closes a race: an attempt released after the snapshot is not added back, and
    one admitted after it is not touched. Admitted holders whose rows are not committed when
    the database is read are not removed either: only ended attempts are.
    """
    observed = semaphore.snapshot()
    seen = frozenset(holder for holders in observed.values() for holder in holders)
    return semaphore.reconcile(read_truth(seen), lease_s, observed=observed)


@dataclass(frozen=True, slots=True)
class KeyPlan:
    """For one key: holders to remove, holders to add (if still absent)."""

    remove: frozenset[str]
    add: frozenset[str]


def plan_reconcile(truth: Truth, observed: Holders) -> dict[str, KeyPlan]:
    """Per key, what to remove (observed, ended, not live) and to add (live, not observed).

    Keys with nothing to do are left out, so their holders (and expired leases) are untouched.
    """
    plans = {}
    for key in set(truth.live) | set(observed):
        want = frozenset(truth.live.get(key, ()))
        seen = frozenset(observed.get(key, ()))
        plan = KeyPlan(remove=seen.intersection(truth.ended) - want, add=want - seen)
        if plan.remove or plan.add:
            plans[key] = plan
    return plans


def reconcile_result(
    added: Iterable[tuple[str, str]], removed: Iterable[tuple[str, str]], reaped: Sequence[Reaped]
) -> ReconcileResult:
    """Build the result from (key, holder) pairs (the caller logs it: a scheduler that frees
    ended calls' slots every tick must not log a line a tick)."""
    by_key_added: dict[str, set[str]] = {}
    for key, holder in added:
        by_key_added.setdefault(key, set()).add(holder)
    by_key_removed: dict[str, set[str]] = {}
    for key, holder in removed:
        by_key_removed.setdefault(key, set()).add(holder)
    result = ReconcileResult(
        added={key: frozenset(v) for key, v in by_key_added.items()},
        removed={key: frozenset(v) for key, v in by_key_removed.items()},
        reaped=tuple(reaped),
    )
    return result


class ReapReport:
    """Reports removed expired leases: a log line each, and a running total (the metric)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = 0

    @property
    def total(self) -> int:
        return self._total

    def record(self, reaped: Sequence[Reaped]) -> None:
        if not reaped:
            return
        with self._lock:
            self._total += len(reaped)
        for key, holder in reaped:
            log.warning("lease expired: reaped holder %s from %s", holder, key)


def check_keys(prefix: str, keys: Iterable[str]) -> None:
    """Refuse keys outside ``prefix``: reconcile and reap-all would never see them."""
    for key in keys:
        if not key.startswith(prefix):
            raise ValueError(f"key {key!r} is outside the semaphore's prefix {prefix!r}")


def check_lease(lease_s: float) -> None:
    if not lease_s > 0:
        raise ValueError(f"lease_s must be > 0, not {lease_s}")
