"""The in-memory lease semaphore: the embedded default, and the reference for the Redis one.

It holds its state in one process, so it only limits the workers of that process (embedded
mode runs its tasks in-process). Time comes from the injected ``clock`` (seconds, any epoch,
never going backwards), so tests drive leases without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence

from dialer.concurrency.keys import SEMAPHORE_PREFIX
from dialer.concurrency.semaphore.base import (
    Admission,
    Holders,
    Limit,
    Reaped,
    ReapReport,
    ReconcileResult,
    Truth,
    check_keys,
    check_lease,
    plan_reconcile,
    reconcile_result,
)


class MemorySemaphore:
    """A :class:`~dialer.concurrency.semaphore.base.LeaseSemaphore` in a dict, under a lock."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, prefix: str = SEMAPHORE_PREFIX
    ) -> None:
        self._clock = clock
        self._prefix = prefix
        self._lock = threading.Lock()
        #: key -> holder -> lease expiry (clock seconds). Keys with no holder are dropped.
        self._held: dict[str, dict[str, float]] = {}
        self._reports = ReapReport()

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def reaped_total(self) -> int:
        return self._reports.total

    def acquire(self, holder: str, limits: Sequence[Limit], lease_s: float) -> Admission:
        return self.acquire_many([(holder, limits)], lease_s)[0]

    def acquire_many(
        self, requests: Sequence[tuple[str, Sequence[Limit]]], lease_s: float
    ) -> list[Admission]:
        check_lease(lease_s)
        for _, limits in requests:
            check_keys(self._prefix, (limit.key for limit in limits))
        reaped: list[Reaped] = []
        with self._lock:
            now = self._clock()
            admissions = [
                self._acquire(holder, limits, now, now + lease_s, reaped)
                for holder, limits in requests
            ]
        self._reports.record(reaped)
        return admissions

    def _acquire(
        self, holder: str, limits: Sequence[Limit], now: float, expiry: float, reaped: list[Reaped]
    ) -> Admission:
        """One acquire; the caller holds the lock. Mirrors the Redis script exactly."""
        for limit in limits:
            held = self._held.get(limit.key, {})
            if limit.max_holders is None or held.get(holder, now) > now:
                continue
            if sum(1 for e in held.values() if e > now) >= limit.max_holders:
                return Admission(False, limit.key)
        for limit in limits:
            held = self._held.setdefault(limit.key, {})
            previous = held.get(holder)
            if previous is not None and previous <= now:
                reaped.append(Reaped(limit.key, holder))
                previous = None
            held[holder] = expiry if previous is None else max(previous, expiry)
        return Admission(True)

    def renew(self, holder: str, keys: Sequence[str], lease_s: float) -> bool:
        check_lease(lease_s)
        with self._lock:
            now = self._clock()
            expiries = [self._held.get(key, {}).get(holder) for key in keys]
            if any(expiry is None or expiry <= now for expiry in expiries):
                return False
            for key in keys:
                held = self._held[key]
                held[holder] = max(held[holder], now + lease_s)
        return True

    def release(self, holder: str, keys: Sequence[str]) -> bool:
        return self.release_many([(holder, keys)])[0]

    def release_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[bool]:
        reaped: list[Reaped] = []
        with self._lock:
            now = self._clock()
            results = [self._release(holder, keys, now, reaped) for holder, keys in requests]
        self._reports.record(reaped)
        return results

    def _release(self, holder: str, keys: Sequence[str], now: float, reaped: list[Reaped]) -> bool:
        """One release; the caller holds the lock."""
        live = False
        for key in keys:
            held = self._held.get(key)
            if held is None or holder not in held:
                continue
            if held.pop(holder) > now:
                live = True
            else:
                reaped.append(Reaped(key, holder))
            if not held:
                del self._held[key]
        return live

    def count(self, key: str) -> int:
        return len(self.holders(key))

    def holders(self, key: str) -> set[str]:
        with self._lock:
            now = self._clock()
            return {h for h, expiry in self._held.get(key, {}).items() if expiry > now}

    def snapshot(self) -> dict[str, set[str]]:
        with self._lock:
            now = self._clock()
            found = {
                key: {h for h, expiry in held.items() if expiry > now}
                for key, held in self._held.items()
            }
        return {key: holders for key, holders in found.items() if holders}

    def reap(self, keys: Iterable[str] | None = None) -> list[Reaped]:
        with self._lock:
            reaped = self._reap(self._clock(), list(self._held) if keys is None else keys)
        self._reports.record(reaped)
        return reaped

    def begin_rebuild(self) -> str:
        return ""  # held in this process: it loses its holders only with the process

    def finish_rebuild(self, token: str) -> bool:
        return True

    def reconcile(
        self, truth: Truth, lease_s: float, *, observed: Holders | None = None
    ) -> ReconcileResult:
        check_lease(lease_s)
        check_keys(self._prefix, truth.live)
        if observed is None:
            observed = self.snapshot()
        plans = plan_reconcile(truth, observed)
        added: list[tuple[str, str]] = []
        removed: list[tuple[str, str]] = []
        with self._lock:
            now = self._clock()
            reaped = self._reap(now, plans)
            for key, plan in plans.items():
                held = self._held.setdefault(key, {})
                for holder in plan.remove:
                    if held.pop(holder, None) is not None:
                        removed.append((key, holder))
                for holder in plan.add:
                    if holder not in held:
                        held[holder] = now + lease_s
                        added.append((key, holder))
                if not held:
                    del self._held[key]
        self._reports.record(reaped)
        return reconcile_result(added, removed, reaped)

    def _reap(self, now: float, keys: Iterable[str]) -> list[Reaped]:
        """Remove the expired leases of ``keys``; the caller holds the lock and reports."""
        reaped = []
        for key in keys:
            held = self._held.get(key)
            if held is None:
                continue
            for holder in [h for h, expiry in held.items() if expiry <= now]:
                del held[holder]
                reaped.append(Reaped(key, holder))
            if not held:
                del self._held[key]
        return reaped
