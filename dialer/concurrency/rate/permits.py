"""Reserving call starts ahead: a claimed call gets its instant with its claim, and waits once.

Taking the pace only when a dial task runs (:meth:`CallRateLimiter.try_acquire`) lets a
dispatch claim far more calls than the pace lets out: at 1 call/s, fifty dial tasks claimed
together all run at once, one starts, and forty-nine are sent back to try again a second
later, together, again; each call costs tens of task runs. Here the claim *reserves* each
call's start instead:

- **Reserve.** For each call asked for (an :class:`Ask`: the key of its permit and the rates
  it must pass), in order, the *shared* rate's next free instant (the account's; without a
  share, the first rate's), if it is within ``ahead_s`` of now and every other rate of the
  call (caller number, tenant cap) admits it there. The start is taken from every rate as a
  call arriving at that instant would take it: the GCRA state is one theoretical arrival
  time per key, so a start reserved for a later instant moves it exactly as the call would,
  and every later try, reservation or not, finds it taken. The state has no holes: a start
  that the call's own caller number or cap puts later than the account's next instant is
  not reserved (it would leave the account unused until then, for everyone). A call not
  given an instant is not claimed now (nothing is taken for it); a later dispatch claims it.
- **Share, in runs.** Tenants split the account as in :mod:`~dialer.concurrency.rate.fair`
  (each active tenant's share key paced at ``active / account_cps``), but the state cannot
  hold two tenants' starts interleaved ahead, so a reservation counts a tenant as
  *entitled* while its share key is at most ``ahead_s`` past the instant: each tenant takes
  its share of the horizon as a run of instants, the next tenant its own run after it. A
  tenant past its share *borrows* only instants within ``BORROW_FRACTION`` of the horizon,
  which no other tenant's dispatch is likely to come for first: capacity nobody claims is
  used, and a tenant that dispatches finds the instants after the near ones for itself.
  (The owed marks of the per-try rule need each refused call to come back at its instant;
  a claim comes back at the next dispatch instead.)
- **Permit.** Each start given is kept as a *permit*: the instant, under the call's own key,
  until ``late_s`` after it. The dial task is sent with the wait to that instant as its
  countdown and uses the permit (:meth:`~dialer.concurrency.rate.base.CallRateLimiter.redeem`):
  no second take, nobody else's start used.
- **Late and lost.** A dial that comes after its permit lapsed (its worker stalled, its task
  was re-sent) takes its pace as before, at the gate. A permit never used (the claim's
  transaction failed after it, the call was screened out before its dial) is a start the
  rates lose. Claims take their slots first and reserve last, so a start is never reserved
  for a call that then finds no slot.

What still holds: every start is taken from every rate at its instant, so the reserved
instants are paced exactly as try-at-dial starts are (burst, account, caller number, the
tenant's cap and share). A call starts between its instant and ``late_s`` after it; so in
any window of ``w`` seconds at most the starts a rate admits in ``w + late_s`` go out (with
``late_s`` 0, none beyond the rate, at the price of more calls sent back when their tasks are
late). Fairness: over any stretch longer than the horizon each tenant with calls to claim
gets its share; within one, a tenant may wait up to ``ahead_s`` for the run promised to
another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from dialer.concurrency.rate.base import Rate, gcra_take, gcra_wait_s
from dialer.concurrency.rate.fair import (
    ACTIVE_WINDOW_S,
    TenantShare,
    account_rate,
    share_interval_s,
)

#: A permit this close to its instant is due (seconds): the instants are sums of intervals, and
#: a rounding error's wait would send a task back for nothing.
DUE_WITHIN_S = 1e-6
#: The part of the horizon a tenant past its share may still borrow: the instants that near
#: are likely to go unused otherwise.
BORROW_FRACTION = 0.5


@dataclass(frozen=True, slots=True)
class Ask:
    """One call start asked for: where its permit is kept, and the rates it must pass (its
    share, if any, is the reservation's)."""

    permit_key: str
    rates: tuple[Rate, ...]


@dataclass(slots=True)
class PaceState:
    """The keys one reservation reads and writes, as values (clock seconds).

    ``tat``: rate and share keys -> theoretical arrival time (absent: idle). ``active``: the
    account's tenants -> when each last tried.
    """

    tat: dict[str, float] = field(default_factory=dict)
    active: dict[str, float] = field(default_factory=dict)


def keys_of(asks: Sequence[Ask]) -> list[str]:
    """Every rate key the asks touch, each once, in order."""
    return list(dict.fromkeys(rate.key for ask in asks for rate in ask.rates))


def reserve(
    state: PaceState,
    asks: Sequence[Ask],
    share: TenantShare | None,
    now: float,
    ahead_s: float,
) -> list[float | None]:
    """Reserve a start for each ask within ``ahead_s`` of ``now``, in order: each one's
    instant (clock seconds), None for one given none (nothing taken for it). ``state`` is
    updated as the store must be (see the module docstring)."""
    if share is not None:
        _prune(state, now)
        state.active[share.tenant] = now
    starts: list[float | None] = []
    for ask in asks:
        at = _instant(state, ask.rates, share, now, ahead_s)
        starts.append(at)
        if at is None:
            continue
        for rate in ask.rates:
            state.tat[rate.key] = gcra_take(rate, state.tat.get(rate.key), at)
    for key in [key for key, tat in state.tat.items() if tat <= now]:
        del state.tat[key]
    return starts


def _instant(
    state: PaceState,
    rates: Sequence[Rate],
    share: TenantShare | None,
    now: float,
    ahead_s: float,
) -> float | None:
    """The instant one call may have (the shared rate's next free one), taking its share
    if it is entitled; None if its other rates or its share refuse it there."""
    shared = account_rate(rates, share) if share is not None else rates[0]
    at = now + gcra_wait_s(shared, state.tat.get(shared.key), now)
    if at > now + ahead_s:
        return None
    if any(gcra_wait_s(rate, state.tat.get(rate.key), at) > DUE_WITHIN_S for rate in rates):
        return None
    if share is None:
        return at
    share_tat = state.tat.get(share.share_key)
    if share_tat is None or share_tat - ahead_s <= at:
        interval_s = share_interval_s(shared.per_s, len(state.active))
        state.tat[share.share_key] = max(share_tat or at, at) + interval_s
        return at
    # Past its share: borrow only an instant so near that no other tenant's dispatch could
    # come for it first.
    return at if at <= now + ahead_s * BORROW_FRACTION else None


def _prune(state: PaceState, now: float) -> None:
    """Forget tenants idle for :data:`ACTIVE_WINDOW_S`."""
    for tenant in [t for t, seen in state.active.items() if seen < now - ACTIVE_WINDOW_S]:
        del state.active[tenant]
