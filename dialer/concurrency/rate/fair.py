"""Sharing a provider account's calls per second fairly between tenants.

The account pace (:mod:`~dialer.concurrency.rate.base`) is a hard limit, first come, first
served: a tenant with a large campaign and many workers retrying at every free instant takes
nearly every start, and a small tenant's one waiting call loses the race again and again.
The rule here:

- **Share.** The *active* tenants of an account are those seen trying to start a call within
  the last :data:`ACTIVE_WINDOW_S`. Each has a share of ``account_cps / active`` calls per
  second, tracked by its own GCRA key (the *share key*, burst 1). A tenant whose share key
  admits a call is *entitled*; taking a call as entitled advances its share key.
- **Owed.** A tenant refused, for whatever reason, whose share admits it by the time it
  was told to come back is *owed* a start from that instant (its *due*) until
  :data:`OWED_GRACE_S` later, or until it takes one.
- **Lend.** A tenant past its share may still *borrow* an account start, when the account
  admits it and the start would not keep the account busy at the due of another owed
  tenant. Borrowing leaves its share key alone: using capacity nobody asked for costs
  nothing later.
- **Caps.** A tenant's ``max_cps`` and its caller number's pace are ordinary rates taken
  in the same atomic check. A tenant refused by one of them is owed only from when it may
  go, so until then the account capacity it leaves is lent to the others.

Why this gives each waiting tenant its share: entitled takes of one tenant are spaced by
its share interval ``active / account_cps``, so all the tenants' entitled takes together
never ask for more than the account's rate (plus one call each after an idle spell). A
waiting tenant is refused and comes back when told; if its share admits it then, it is owed
from then on, and no borrower's start may keep the account busy past that instant: the
starts it competes for go only to entitled tenants, and among ``active`` tenants each gets
at most one per share interval, so it gets one within ``active / account_cps`` seconds of
its share admitting it. A tenant alone is always entitled or free to borrow: it gets the
whole account rate. A tenant that stops trying leaves the active set after
:data:`ACTIVE_WINDOW_S`, and its owed mark lapses :data:`OWED_GRACE_S` after its due, so an
abandoned task holds the others back for at most that long. The guarantee assumes a refused
task comes back within that grace of when it was told (a task sent again with a countdown
does); one later still goes first whenever its share admits it and the account is free, but
a borrower may have taken the start it was owed.

Why not only per-tenant keys at ``account_cps / active`` (every start taken from the
tenant's key and the account's): that also guarantees the share, but it is not work
conserving. A tenant with one call every few seconds counts as active for a window after
each, and for that long every other tenant is held to ``1 / active`` of the account while
the rest of the account stays unused. Here that capacity is borrowed, and only an owed
tenant (one that asked and was refused) reclaims it.

Every tenant counts the same (no weights). The state is bounded: one share key per active
tenant (expiring once idle) and two sorted sets per account (the active and owed tenants,
pruned at every check and expiring with the last of them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dialer.concurrency.rate.base import Rate

#: Seconds after its last try a tenant still counts as active (takes a share).
ACTIVE_WINDOW_S = 2.0
#: Seconds past the instant it was told to come back an owed tenant still holds borrowers
#: back (the latency of a task sent again with a countdown).
OWED_GRACE_S = 0.5


@dataclass(frozen=True, slots=True)
class TenantShare:
    """Which tenant a call start is for, and the keys of its account's sharing state.

    ``account_key`` names the one of the call's rates that is the account pace to share;
    its ``per_s`` is the rate the active tenants split.
    """

    tenant: str
    account_key: str
    share_key: str
    active_key: str
    owed_key: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one try decides: ``wait_s`` 0.0 = admitted (take every rate), else the wait.

    ``share_tat``: the share key's new theoretical arrival time (None: unchanged).
    ``owed_due``: mark the tenant owed from then (None: leave its mark alone; else as
    :func:`owed_mark` says).
    ``clear_owed``: remove the tenant's owed mark.
    """

    wait_s: float
    share_tat: float | None = None
    owed_due: float | None = None
    clear_owed: bool = False


def account_rate(rates: Sequence[Rate], share: TenantShare) -> Rate:
    """The one of ``rates`` that ``share`` splits between tenants."""
    for rate in rates:
        if rate.key == share.account_key:
            return rate
    raise ValueError(f"no rate has the shared account key {share.account_key!r}")


def share_interval_s(account_per_s: float, active: int) -> float:
    """Seconds between one tenant's entitled starts when ``active`` tenants share the rate."""
    return max(active, 1) / account_per_s


def decide(
    now: float,
    *,
    account_wait_s: float,
    own_wait_s: float,
    share_tat: float | None,
    interval_s: float,
    account_free_s: float,
    owed_dues: Sequence[float],
) -> Verdict:
    """One tenant's try at ``now``.

    ``account_wait_s``: the account rate's GCRA wait; ``own_wait_s``: the largest wait of the
    call's other rates (caller number, tenant cap); ``share_tat``: the tenant's share key
    (None: idle); ``interval_s``: its share interval now (:func:`share_interval_s`);
    ``account_free_s``: the instant the account would admit again were this call taken now;
    ``owed_dues``: when the *other* tenants owed a start are due back (marks still standing:
    due + :data:`OWED_GRACE_S` is after ``now``).
    """
    if own_wait_s > 0 or account_wait_s > 0:
        return _refused(now, max(own_wait_s, account_wait_s), share_tat)
    if share_tat is None or share_tat <= now:
        start = now if share_tat is None else max(share_tat, now)
        return Verdict(0.0, share_tat=start + interval_s, clear_owed=True)
    # Past its share: borrow, unless that keeps the account busy when an owed tenant is due.
    blocking = [due for due in owed_dues if due < account_free_s]
    if not blocking:
        return Verdict(0.0)
    due = min(blocking)
    back = due if due > now else due + OWED_GRACE_S
    return _refused(now, min(share_tat, back) - now, share_tat)


def owed_mark(standing: float | None, due: float, now: float) -> float:
    """A tenant's owed due once it is refused again with ``due``: the earlier of the two while
    its standing due is still ahead (another of its calls comes back then), else ``due``."""
    return due if standing is None or standing <= now else min(standing, due)


def _refused(now: float, wait_s: float, share_tat: float | None) -> Verdict:
    """Refused for ``wait_s``: owed from its return if its share admits it by then."""
    back = now + wait_s
    owed = share_tat is None or share_tat <= back
    return Verdict(wait_s, owed_due=back if owed else None)
