"""Limits on calls in flight (the lease semaphore) and on call starts per second (the pacer).

Calls in flight
---------------
Each call attempt holds one slot in every key of its :class:`SlotScope` (campaign, tenant,
caller number) from when it is queued until it ends. Limits are read from the database and
passed at each acquire, all layers at once, all or nothing (:func:`layered_limits`). Slots are
*leases*: a holder that is never released (a worker killed mid-call) frees its slots when its
lease expires, and the expiry is reported (a warning naming holder and key, and
``reaped_total``).

The protocol the scheduler and workers follow, and why:

1. Insert the attempt row (status ``queued``) and flush to get its id; ``acquire`` with
   ``holder_id(attempt.id)`` and a short lease covering the wait for a worker (the queue
   lease); commit only if admitted, roll back otherwise (a row without a slot would be
   "live" to reconcile).
2. When the worker starts dialing, ``renew`` to cover ring time + max call length + callback
   delay. If renew is False (the lease lapsed or reconcile removed it) ``acquire`` again, and
   dial only once it is admitted; otherwise put the attempt back to wait.
3. When the attempt ends, commit the end first, then ``release`` (idempotent). In that order
   a reconcile running in between can never re-add the holder.
4. The scheduler calls ``reap()`` and ``reconcile(read_truth, lease_s)`` (truth from
   :func:`dialer.concurrency.truth.read_truth`) at start-up and then every reconcile
   interval, with ``lease_s`` the dialing lease of step 2.

The rest of the dialer speaks to the semaphore through :class:`CallSlots` only, in attempts
and scopes: the keys (:mod:`dialer.concurrency.keys`) never leave this package.

What reconcile does, and why:

- After a Redis restart or flush, the holders of attempts with a call placed (dialing,
  ringing, in progress) are restored at the next reconcile, even above the limit (they are
  real calls). A queued attempt's slot is a reservation and is not restored: its dial task
  finds it gone (``renew`` fails) and takes one again with the limits checked, or waits.
  Restoring it unchecked could push a campaign over its limit when the lapsed reservation
  had gone to another call.
- Only holders of *ended* attempts are removed (the row exists and says ``ended``).
- Holders the database does not know are left alone: they expire with their lease, and the
  reap reports them. Step 1 takes the slot before the row commits, so a reconcile reading the
  database in between cannot see the row; removing the holder then would free a slot a real
  call still uses, and a second call could take it. A row that never commits (the scheduler
  crashed or rolled back) holds its slots for at most the short queue lease.

The reconcile interval is the caller's choice (:data:`RECONCILE_INTERVAL_S` is a sensible
default). It bounds the harm of Redis losing its data (restart without AOF, failover): until
the next reconcile the keys under-count, so for at most one interval (plus the time the
reconcile takes) up to one limit's worth of extra calls may be admitted; after it the keys hold
every live attempt again, even above the limit, and nothing new is admitted until they drain.
A killed worker's slots come back after at most its lease, or, once its attempt is ended
(by the reaper), at the next reconcile, whichever is first.

Calls per second
----------------
:class:`~dialer.concurrency.rate.base.CallRateLimiter` paces call starts per provider account
and per caller number (:func:`cps_rates`), and with :func:`tenant_pace` shares the account
fairly between the tenants with calls waiting and applies the tenant's own cap
(``tenants.max_cps``), all in one atomic step (:mod:`dialer.concurrency.rate.fair` says how
and why); ``try_acquire`` returns 0.0 or the seconds to wait, so a task re-enqueues itself
with that countdown instead of spinning. Take the pace right before placing the call, after
the slot is held. ``reserve`` takes the starts of calls about to be claimed ahead, each at its
own instant, kept as a permit that ``redeem`` uses when the call's task comes
(:mod:`dialer.concurrency.rate.permits`): a dispatch claims only what the pace lets start
soon, and a dial task waits once, for its own instant.

Stores: :func:`open_stores` gives Redis backends in a distributed deployment and in-memory
ones (one process) in embedded mode; every Redis client comes from :func:`open_redis`.
"""

from __future__ import annotations

from dialer.concurrency.connection import open_redis
from dialer.concurrency.keys import (
    RATE_PREFIX,
    SEMAPHORE_PREFIX,
    TWILIO_DEFAULT_CPS,
    SlotLimits,
    SlotScope,
    cps_rates,
    holder_id,
    layered_limits,
    tenant_pace,
)
from dialer.concurrency.rate.base import CallRateLimiter, Rate
from dialer.concurrency.rate.fair import TenantShare
from dialer.concurrency.rate.memory import MemoryRateLimiter
from dialer.concurrency.rate.redis import RedisRateLimiter
from dialer.concurrency.semaphore.base import (
    Admission,
    LeaseSemaphore,
    Limit,
    Reaped,
    ReconcileResult,
    Truth,
    reconcile_from,
)
from dialer.concurrency.semaphore.memory import MemorySemaphore
from dialer.concurrency.semaphore.redis import RedisSemaphore
from dialer.concurrency.slots import CallSlots, SlotClaim
from dialer.concurrency.stores import ConcurrencyStores, open_stores
from dialer.concurrency.truth import SlotTruth, read_truth

#: A default reconcile interval in seconds; see the module docstring for what it bounds.
RECONCILE_INTERVAL_S = 60.0

__all__ = [
    "RATE_PREFIX",
    "RECONCILE_INTERVAL_S",
    "SEMAPHORE_PREFIX",
    "TWILIO_DEFAULT_CPS",
    "Admission",
    "CallRateLimiter",
    "CallSlots",
    "ConcurrencyStores",
    "LeaseSemaphore",
    "Limit",
    "MemoryRateLimiter",
    "MemorySemaphore",
    "Rate",
    "Reaped",
    "ReconcileResult",
    "RedisRateLimiter",
    "RedisSemaphore",
    "SlotClaim",
    "SlotLimits",
    "SlotScope",
    "SlotTruth",
    "TenantShare",
    "Truth",
    "cps_rates",
    "holder_id",
    "layered_limits",
    "open_redis",
    "open_stores",
    "read_truth",
    "reconcile_from",
    "tenant_pace",
]
