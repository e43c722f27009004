"""The in-memory call pacer: embedded mode, and the reference for the Redis one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from dialer.concurrency.rate import permits
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
        #: permit key -> (its instant, when it lapses) (clock seconds).
        self._permits: dict[str, tuple[float, float]] = {}

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

    def reserve(
        self,
        asks: Sequence[permits.Ask],
        share: TenantShare | None = None,
        *,
        ahead_s: float,
        late_s: float,
    ) -> list[float | None]:
        with self._lock:
            now = self._clock()
            keys = permits.keys_of(asks)
            if share is not None:
                keys.append(share.share_key)
            state = permits.PaceState(
                tat={key: self._tat[key] for key in keys if key in self._tat},
                active=dict(self._active.get(share.active_key, {})) if share else {},
            )
            starts = permits.reserve(state, asks, share, now, ahead_s)
            for key in keys:
                self._tat.pop(key, None)
            self._tat.update(state.tat)
            if share is not None:
                self._active[share.active_key] = state.active
            for ask, at in zip(asks, starts, strict=True):
                if at is not None:
                    self._permits[ask.permit_key] = (at, at + late_s)
            for key in [key for key, (_, until) in self._permits.items() if until < now]:
                del self._permits[key]
        return [None if at is None else at - now for at in starts]

    def redeem(self, permit_key: str) -> float | None:
        with self._lock:
            now = self._clock()
            permit = self._permits.get(permit_key)
            if permit is None or permit[1] < now:
                self._permits.pop(permit_key, None)
                return None
            if permit[0] - now > permits.DUE_WITHIN_S:
                return permit[0] - now
            del self._permits[permit_key]
            return 0.0

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
