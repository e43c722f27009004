"""Names of every key the concurrency store uses, and the limits built on them, in one place.

Semaphore keys (``SEMAPHORE_PREFIX``; one sorted set of holders each):

- ``{prefix}campaign:{campaign_id}``: the campaign's ``max_concurrency``;
- ``{prefix}tenant:{tenant_id}``: the tenant-wide cap (``tenants.max_concurrency``);
- ``{prefix}caller:{tenant_id}:{number}``: the caller number's cap (``caller_numbers``).
  Numbers are scoped by tenant so one tenant's traffic never shows in another's keys.

An attempt registers in *every* key of its scope, capped or not, so counts and reconcile see
all calls; a limit of None means "tracked, no cap". The holder id is the attempt id as text
(:func:`holder_id`), the string :class:`~dialer.concurrency.slots.CallSlots` reads back
(and :func:`attempt_id_of` turns back into the id).

Pacing keys (``RATE_PREFIX``; one number each): ``{prefix}account:{account}``,
``{prefix}caller:{account}:{number}`` and the tenant's cap ``{prefix}tenant:{tenant_id}``
(``tenants.max_cps``, whatever the account). ``account`` names a provider account, e.g.
``twilio:AC123``, so two providers never share a pace by accident. Sharing the account
between tenants (:mod:`~dialer.concurrency.rate.fair`) adds ``{prefix}share:{account}:{tenant_id}``
(a number) and two sorted sets of tenant ids, ``{prefix}active:{account}`` and
``{prefix}owed:{account}``. A start reserved ahead for a claimed call
(:mod:`~dialer.concurrency.rate.permits`) is kept as ``{prefix}permit:{account}:{recipient_id}``
(its instant; one live attempt per recipient, so one permit), until it is used or lapses.

Dispatch flags (``DISPATCH_PENDING_PREFIX``; one short-lived string each):
``{prefix}{campaign_id}`` is set while a dispatch of the campaign is queued and not started,
so more requests for it coalesce (:func:`dispatch_pending_key`).

The keys of a Redis broker (its queues ``dial`` and ``events``, its unacked sets) are
Celery's own; they live in the database of the broker URL. With RabbitMQ as the broker
(``DIALER_BROKER_URL``) Redis holds only the keys above.

Only :mod:`dialer.concurrency` builds these keys: the rest of the code hands it scopes and
ids (:class:`~dialer.concurrency.slots.CallSlots`). Tests pass their own prefixes so they
never touch each other's (or production's) keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialer.concurrency.rate.base import Rate
from dialer.concurrency.rate.fair import TenantShare
from dialer.concurrency.semaphore.base import Limit

SEMAPHORE_PREFIX = "dialer:sem:"
RATE_PREFIX = "dialer:cps:"
DISPATCH_PENDING_PREFIX = "dialer:dispatch-pending:"
#: Twilio's default calls per second per account (5 with a business profile).
TWILIO_DEFAULT_CPS = 1.0


#: Attempt ids are 64-bit signed integers (``BigInteger``): nothing larger can name a row.
_MAX_ATTEMPT_ID = 2**63 - 1


def holder_id(attempt_id: int | str) -> str:
    """The semaphore holder id of a call attempt."""
    return str(attempt_id)


def attempt_id_of(holder: str) -> int | None:
    """The attempt id ``holder`` names (as :func:`holder_id` wrote it), or None if it names none.

    Strict, so a stray holder (a test's, an operator's) is never mistaken for an attempt.
    """
    if not (holder.isascii() and holder.isdigit()) or holder != str(int(holder)):
        return None
    attempt_id = int(holder)
    return attempt_id if attempt_id <= _MAX_ATTEMPT_ID else None


def campaign_key(campaign_id: str, prefix: str = SEMAPHORE_PREFIX) -> str:
    """The semaphore key of a campaign's ``max_concurrency``."""
    return f"{prefix}campaign:{campaign_id}"


@dataclass(frozen=True, slots=True)
class SlotScope:
    """Where one call attempt holds slots: its campaign, its tenant, its caller number."""

    campaign_id: str
    tenant_id: str
    #: The number the call is placed from (``call_attempts.from_number``); None = unknown yet.
    caller_number: str | None = None

    def campaign_key(self, prefix: str = SEMAPHORE_PREFIX) -> str:
        return campaign_key(self.campaign_id, prefix)

    def tenant_key(self, prefix: str = SEMAPHORE_PREFIX) -> str:
        return f"{prefix}tenant:{self.tenant_id}"

    def caller_key(self, prefix: str = SEMAPHORE_PREFIX) -> str | None:
        if self.caller_number is None:
            return None
        return f"{prefix}caller:{self.tenant_id}:{self.caller_number}"

    def keys(self, prefix: str = SEMAPHORE_PREFIX) -> tuple[str, ...]:
        """Every key an attempt of this scope holds a slot in (for renew and release)."""
        caller = self.caller_key(prefix)
        base = (self.campaign_key(prefix), self.tenant_key(prefix))
        return base if caller is None else (*base, caller)


@dataclass(frozen=True, slots=True)
class SlotLimits:
    """The caps one attempt's slots are taken under: its campaign's ``max_concurrency``, its
    tenant's cap and its caller number's (None: tracked, not capped).

    Read from the database at each acquire: a lowered limit then admits nothing until the
    count is below it, a raised one admits more at once.
    """

    campaign: int
    tenant: int | None = None
    caller: int | None = None


def layered_limits(
    scope: SlotScope,
    campaign_limit: int,
    tenant_limit: int | None,
    caller_limit: int | None,
    *,
    prefix: str = SEMAPHORE_PREFIX,
) -> tuple[Limit, ...]:
    """The limits to acquire for one attempt, in :meth:`SlotScope.keys` order."""
    caller_key = scope.caller_key(prefix)
    if caller_key is None and caller_limit is not None:
        raise ValueError("a caller limit needs a scope with a caller number")
    limits = [
        Limit(scope.campaign_key(prefix), campaign_limit),
        Limit(scope.tenant_key(prefix), tenant_limit),
    ]
    if caller_key is not None:
        limits.append(Limit(caller_key, caller_limit))
    return tuple(limits)


def cps_rates(
    account: str,
    caller_number: str | None = None,
    *,
    account_cps: float = TWILIO_DEFAULT_CPS,
    caller_cps: float | None = None,
    prefix: str = RATE_PREFIX,
) -> tuple[Rate, ...]:
    """The paces one call start must pass: its provider account's and, if set, its number's."""
    rates = [Rate(f"{prefix}account:{account}", account_cps)]
    if caller_cps is not None:
        if caller_number is None:
            raise ValueError("a caller rate needs a caller number")
        rates.append(Rate(f"{prefix}caller:{account}:{caller_number}", caller_cps))
    return tuple(rates)


def tenant_pace(
    account: str,
    tenant_id: str,
    caller_number: str | None = None,
    *,
    account_cps: float = TWILIO_DEFAULT_CPS,
    caller_cps: float | None = None,
    tenant_cps: float | None = None,
    prefix: str = RATE_PREFIX,
) -> tuple[tuple[Rate, ...], TenantShare]:
    """The paces one call start of ``tenant_id`` must pass (:func:`cps_rates`, and the
    tenant's cap if it has one), and its share of the account."""
    rates = cps_rates(
        account, caller_number, account_cps=account_cps, caller_cps=caller_cps, prefix=prefix
    )
    if tenant_cps is not None:
        rates = (*rates, Rate(f"{prefix}tenant:{tenant_id}", tenant_cps))
    share = TenantShare(
        tenant=tenant_id,
        account_key=rates[0].key,
        share_key=f"{prefix}share:{account}:{tenant_id}",
        active_key=f"{prefix}active:{account}",
        owed_key=f"{prefix}owed:{account}",
    )
    return rates, share


def permit_key(account: str, recipient_id: int, *, prefix: str = RATE_PREFIX) -> str:
    """Where the start reserved for a call to ``recipient_id`` is kept until it is used."""
    return f"{prefix}permit:{account}:{recipient_id}"


def dispatch_pending_key(campaign_id: str, prefix: str = DISPATCH_PENDING_PREFIX) -> str:
    """The flag set while a dispatch of ``campaign_id`` is queued and not started."""
    return f"{prefix}{campaign_id}"
