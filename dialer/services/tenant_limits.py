"""A tenant's limits (calls in flight, call starts per second, frequency caps per number), and
what an operator sees of it.

Limits are read from the database at every claim and every dial, so a change holds from the
next call on, in every process: nothing is cached. ``None`` is "no cap": the tenant is then
held only by its campaigns' ``max_concurrency`` and its fair share of the provider account's
calls per second (:mod:`dialer.concurrency.rate.fair`). The frequency caps
(:mod:`dialer.policy.frequency`) are different: ``None`` there is "the deployment's default"
(``DIALER_CAP_*``), and a campaign may only be stricter than the tenant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.db.models import ApiKey, Campaign, Tenant
from dialer.errors import NotFound, ValidationError
from dialer.policy.frequency import DEFAULT_CAPS, MAX_CAP, FrequencyCaps, in_force
from dialer.services.tenancy import ensure_tenant

#: The largest ``max_concurrency`` a tenant may have (the column is a 32-bit integer).
MAX_CONCURRENCY_LIMIT = 2**31 - 1
#: The largest ``max_cps``: far above any provider's account rate, so only typos are refused.
MAX_CPS_LIMIT = 10_000.0
#: What removes a cap when given as a limit's value.
NO_CAP = "none"
#: What gives a frequency cap back to the deployment's default.
DEFAULT = "default"


class Keep(Enum):
    """Leave this limit as it is."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP


def parse_max_concurrency(text: str) -> int | None:
    """``--max-concurrency``: a whole number from 1, or ``none`` (no cap)."""
    if text.strip().lower() == NO_CAP:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValidationError(
            "max_concurrency", f"must be a whole number >= 1 or {NO_CAP!r}, not {text!r}"
        ) from None
    if not 1 <= value <= MAX_CONCURRENCY_LIMIT:
        raise ValidationError(
            "max_concurrency", f"must be between 1 and {MAX_CONCURRENCY_LIMIT}, not {value}"
        )
    return value


def parse_max_cps(text: str) -> float | None:
    """``--max-cps``: calls per second above 0 (fractions allowed), or ``none`` (no cap)."""
    if text.strip().lower() == NO_CAP:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValidationError(
            "max_cps", f"must be a number of calls per second > 0 or {NO_CAP!r}, not {text!r}"
        ) from None
    if not (math.isfinite(value) and 0 < value <= MAX_CPS_LIMIT):
        raise ValidationError("max_cps", f"must be > 0 and <= {MAX_CPS_LIMIT:g}, not {text!r}")
    return value


def parse_frequency_cap(name: str, text: str, *, least: int = 1) -> int | None:
    """``--attempts-per-day`` and the like: a whole number from ``least``, or ``default``
    (the deployment's, None)."""
    if text.strip().lower() == DEFAULT:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValidationError(
            name, f"must be a whole number >= {least} or {DEFAULT!r}, not {text!r}"
        ) from None
    if not least <= value <= MAX_CAP:
        raise ValidationError(name, f"must be between {least} and {MAX_CAP}, not {value}")
    return value


@dataclass(frozen=True, slots=True)
class TenantLimits:
    tenant_id: str
    user_id: str
    max_concurrency: int | None
    max_cps: float | None
    #: The tenant's own frequency caps as stored (None: the deployment's default).
    cap_attempts_per_day: int | None = None
    cap_attempts_per_week: int | None = None
    cap_quiet_days_after_answer: int | None = None

    def caps(self, defaults: FrequencyCaps = DEFAULT_CAPS) -> FrequencyCaps:
        """The frequency caps in force for the tenant."""
        stored = (
            self.cap_attempts_per_day,
            self.cap_attempts_per_week,
            self.cap_quiet_days_after_answer,
        )
        return in_force(stored, defaults)


def tenant_caps(
    session: Session, tenant_id: str, defaults: FrequencyCaps = DEFAULT_CAPS
) -> FrequencyCaps:
    """The frequency caps in force for the tenant ``tenant_id`` (a campaign's may only be
    stricter)."""
    stored = session.execute(
        sa.select(
            Tenant.cap_attempts_per_day,
            Tenant.cap_attempts_per_week,
            Tenant.cap_quiet_days_after_answer,
        ).where(Tenant.id == tenant_id)
    ).one_or_none()
    if stored is None:
        return defaults
    return in_force((stored[0], stored[1], stored[2]), defaults)


@dataclass(frozen=True, slots=True)
class TenantReport:
    """What ``dialer tenant show`` prints."""

    limits: TenantLimits
    created_at: datetime
    active_keys: int
    revoked_keys: int
    #: Campaign status -> how many of the tenant's campaigns have it (only those with any).
    campaigns: dict[str, int] = field(default_factory=dict)

    #: The frequency caps in force (the tenant's own, or the deployment's default).
    caps: FrequencyCaps = DEFAULT_CAPS

    def as_dict(self) -> dict[str, object]:
        return {
            "tenant_id": self.limits.tenant_id,
            "user_id": self.limits.user_id,
            "created_at": self.created_at.isoformat(),
            "max_concurrency": self.limits.max_concurrency,
            "max_cps": self.limits.max_cps,
            "frequency_caps": {
                "attempts_per_day": self.caps.attempts_per_day,
                "attempts_per_week": self.caps.attempts_per_week,
                "quiet_days_after_answer": self.caps.quiet_days_after_answer,
                "own": {
                    "attempts_per_day": self.limits.cap_attempts_per_day,
                    "attempts_per_week": self.limits.cap_attempts_per_week,
                    "quiet_days_after_answer": self.limits.cap_quiet_days_after_answer,
                },
            },
            "api_keys": {"active": self.active_keys, "revoked": self.revoked_keys},
            "campaigns": self.campaigns,
        }


def _limits(tenant: Tenant) -> TenantLimits:
    return TenantLimits(
        tenant.id,
        tenant.user_id,
        tenant.max_concurrency,
        tenant.max_cps,
        tenant.cap_attempts_per_day,
        tenant.cap_attempts_per_week,
        tenant.cap_quiet_days_after_answer,
    )


def _find(session: Session, user_id: str) -> Tenant | None:
    return session.scalars(sa.select(Tenant).where(Tenant.user_id == user_id)).one_or_none()


def set_limits(
    session: Session,
    user_id: str,
    *,
    max_concurrency: int | Keep | None = KEEP,
    max_cps: float | Keep | None = KEEP,
    attempts_per_day: int | Keep | None = KEEP,
    attempts_per_week: int | Keep | None = KEEP,
    quiet_days_after_answer: int | Keep | None = KEEP,
    create: bool = False,
    now: datetime,
) -> tuple[TenantLimits, bool]:
    """Set the limits given (``None`` removes a cap, or for a frequency cap gives it back to
    the deployment's default; :data:`KEEP` leaves it); returns the tenant's limits after, and
    whether it was created. :class:`~dialer.errors.NotFound` when ``user_id`` has no tenant
    and ``create`` is False. Campaigns already stricter stay so; one looser than a lowered
    tenant cap is held by the tenant's (the stricter of the two always applies)."""
    tenant = _find(session, user_id)
    created = tenant is None
    if tenant is None:
        if not create:
            raise NotFound(f"no tenant has the user id {user_id!r}")
        tenant = ensure_tenant(session, user_id, now=now)
    if not isinstance(max_concurrency, Keep):
        tenant.max_concurrency = max_concurrency
    if not isinstance(max_cps, Keep):
        tenant.max_cps = max_cps
    if not isinstance(attempts_per_day, Keep):
        tenant.cap_attempts_per_day = attempts_per_day
    if not isinstance(attempts_per_week, Keep):
        tenant.cap_attempts_per_week = attempts_per_week
    if not isinstance(quiet_days_after_answer, Keep):
        tenant.cap_quiet_days_after_answer = quiet_days_after_answer
    session.flush()
    return _limits(tenant), created


def describe(
    session: Session, user_id: str, defaults: FrequencyCaps = DEFAULT_CAPS
) -> TenantReport:
    """The tenant of ``user_id``: its limits, its frequency caps in force (``defaults``: the
    deployment's), its API keys, its campaigns by status. :class:`~dialer.errors.NotFound`
    when it has none."""
    tenant = _find(session, user_id)
    if tenant is None:
        raise NotFound(f"no tenant has the user id {user_id!r}")
    revoked = ApiKey.revoked_at.is_not(None)
    active_keys, revoked_keys = session.execute(
        sa.select(sa.func.count().filter(sa.not_(revoked)), sa.func.count().filter(revoked)).where(
            ApiKey.tenant_id == tenant.id
        )
    ).one()
    by_status = session.execute(
        sa.select(Campaign.status, sa.func.count())
        .where(Campaign.tenant_id == tenant.id)
        .group_by(Campaign.status)
    )
    limits = _limits(tenant)
    return TenantReport(
        limits=limits,
        created_at=tenant.created_at,
        active_keys=active_keys,
        revoked_keys=revoked_keys,
        campaigns={str(status): count for status, count in sorted(by_status)},
        caps=limits.caps(defaults),
    )
