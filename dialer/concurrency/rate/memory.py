"""The in-memory call pacer: embedded mode, and the reference for the Redis one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from dialer.concurrency.rate.base import Rate, gcra_take, gcra_wait_s
from dialer.concurrency.rate.fair import (
    ACTIVE_WINDOW_S,
    OWED_GRACE_S,
    TenantShare,
    Verdict,
    account_rate,
    decide,
    owed_mark,
    share_interval_s,
)


class MemoryRateLimiter:
    """A :class:`~dialer.concurrency.rate.base.CallRateLimiter` for one process.

    ``clock`` returns seconds (any epoch, never going backwards); tests inject their own.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        #: key -> theoretical arrival time (clock seconds): rates and share keys.
        self._tat: dict[str, float] = {}
        #: active key -> tenant -> when it last tried (clock seconds).
        self._active: dict[str, dict[str, float]] = {}
        #: owed key -> tenant -> until when it is owed (clock seconds).
        self._owed: dict[str, dict[str, float]] = {}

    def try_acquire(self, rates: Sequence[Rate], share: TenantShare | None = None) -> float:
        with self._lock:
            now = self._clock()
            verdict = self._decide(rates, share, now)
            if verdict.wait_s == 0:
                for rate in rates:
                    self._tat[rate.key] = gcra_take(rate, self._tat.get(rate.key), now)
            if share is not None:
                self._settle(share, verdict)
            # Idle keys would admit anyway: forget them so the dict does not grow forever.
            for key in [key for key, tat in self._tat.items() if tat <= now]:
                del self._tat[key]
        return verdict.wait_s

    def _decide(self, rates: Sequence[Rate], share: TenantShare | None, now: float) -> Verdict:
        waits = {rate.key: gcra_wait_s(rate, self._tat.get(rate.key), now) for rate in rates}
        if share is None:
            return Verdict(max(waits.values(), default=0.0))
        account = account_rate(rates, share)
        active = self._active.setdefault(share.active_key, {})
        for tenant in [t for t, seen in active.items() if seen < now - ACTIVE_WINDOW_S]:
            del active[tenant]
        active[share.tenant] = now
        owed = self._owed.setdefault(share.owed_key, {})
        for tenant in [t for t, due in owed.items() if due + OWED_GRACE_S <= now]:
            del owed[tenant]
        taken = gcra_take(account, self._tat.get(account.key), now)
        return decide(
            now,
            account_wait_s=waits[account.key],
            own_wait_s=max((w for k, w in waits.items() if k != account.key), default=0.0),
            share_tat=self._tat.get(share.share_key),
            interval_s=share_interval_s(account.per_s, len(active)),
            account_free_s=taken - account.tolerance_s,
            owed_dues=[due for tenant, due in owed.items() if tenant != share.tenant],
        )

    def _settle(self, share: TenantShare, verdict: Verdict) -> None:
        owed = self._owed[share.owed_key]
        if verdict.share_tat is not None:
            self._tat[share.share_key] = verdict.share_tat
        if verdict.owed_due is not None:
            owed[share.tenant] = owed_mark(owed.get(share.tenant), verdict.owed_due, self._clock())
        if verdict.clear_owed:
            owed.pop(share.tenant, None)
        if not owed:
            del self._owed[share.owed_key]
