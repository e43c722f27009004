"""A tenant's contacts per number: what the frequency caps read, and where they are written.

The history (``number_contacts``) is tenant-wide: every campaign of the tenant writes it and
reads it. A row is written when an attempt goes to the provider (the dial's compare-and-set,
or a claim that starts its call in place), removed when the provider then refused the call
(no call existed: it must not count), and marked when a person answered.

The check and the record happen in one transaction, at the dial: on PostgreSQL under a
transaction-scoped advisory lock on (tenant, number), so two campaigns dialing the same number
at the same instant cannot both pass a cap that allows one of them; SQLite serialises writers
on its own. A claim round reads the history of its batch's numbers in one query, so its cost
follows the calls claimed, never the campaign's size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.db.bulk import is_postgres
from dialer.db.models import NumberContact
from dialer.policy.frequency import (
    DEFAULT_CAPS,
    WEEK,
    ContactHistory,
    FrequencyCaps,
    in_force,
)

_CONTACTS = cast(sa.Table, NumberContact.__table__)

_HISTORY = sa.select(_CONTACTS.c.phone_number, _CONTACTS.c.at, _CONTACTS.c.human_answered_at).where(
    _CONTACTS.c.tenant_id == sa.bindparam("tenant_id"),
    _CONTACTS.c.phone_number.in_(sa.bindparam("numbers", expanding=True)),
    _CONTACTS.c.at > sa.bindparam("since"),
)
_RECORD = sa.insert(_CONTACTS)
_FORGET = sa.delete(_CONTACTS).where(_CONTACTS.c.attempt_id == sa.bindparam("attempt_id"))
_ANSWERED = (
    sa.update(_CONTACTS)
    .where(
        _CONTACTS.c.attempt_id == sa.bindparam("b_attempt_id"),
        _CONTACTS.c.human_answered_at.is_(None),
    )
    .values(human_answered_at=sa.bindparam("answered_at"))
)
_LOCK = sa.text("SELECT pg_advisory_xact_lock(:key)")
_LOCK_MANY = sa.text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k")


def caps_of(
    tenant: tuple[int | None, int | None, int | None],
    campaign: Mapping[str, Any] | None,
    defaults: FrequencyCaps = DEFAULT_CAPS,
) -> FrequencyCaps:
    """The caps a campaign's calls obey: the tenant's (``cap_attempts_per_day``,
    ``cap_attempts_per_week``, ``cap_quiet_days_after_answer``; None takes the deployment's
    ``defaults``), with the campaign's own ``frequency_caps`` on top."""
    own = in_force(tenant, defaults)
    if not campaign:
        return own
    return own.stricter(
        campaign.get("attempts_per_day"),
        campaign.get("attempts_per_week"),
        campaign.get("quiet_days_after_answer"),
    )


def histories(
    session: Session,
    tenant_id: str,
    numbers: Iterable[str],
    caps: FrequencyCaps,
    now: datetime,
) -> dict[str, ContactHistory]:
    """The contact history of each of ``numbers`` that has one (one query; the caps decide how
    far back it reads). A number without contacts is left out."""
    wanted = sorted(set(numbers))
    if not wanted or not caps.active:
        return {}
    since = now - max(WEEK, timedelta(days=caps.quiet_days_after_answer))
    attempts: dict[str, list[datetime]] = {}
    answered: dict[str, datetime] = {}
    rows = session.execute(_HISTORY, {"tenant_id": tenant_id, "numbers": wanted, "since": since})
    for number, at, human_at in rows:
        attempts.setdefault(number, []).append(at)
        if human_at is not None and (number not in answered or human_at > answered[number]):
            answered[number] = human_at
    return {
        number: ContactHistory(tuple(times), answered.get(number))
        for number, times in attempts.items()
    }


def lock_numbers(session: Session, tenant_id: str, numbers: Iterable[str]) -> None:
    """Hold the (tenant, number) locks of ``numbers`` until this transaction ends (PostgreSQL;
    SQLite serialises writers already). Taken in one order, so two holders of several never
    wait on each other in a cycle."""
    if not is_postgres(session):
        return
    keys = sorted({_key(tenant_id, number) for number in numbers})
    if len(keys) == 1:
        session.execute(_LOCK, {"key": keys[0]})
    elif keys:
        session.execute(_LOCK_MANY, {"keys": keys})


def record(
    session: Session, tenant_id: str, calls: Iterable[tuple[int, str]], at: datetime
) -> None:
    """Attempts (id, number) going to the provider at ``at``: counted from now on."""
    rows = [
        {"attempt_id": attempt_id, "tenant_id": tenant_id, "phone_number": number, "at": at}
        for attempt_id, number in calls
    ]
    if rows:
        session.execute(_RECORD, rows)


def forget(session: Session, attempt_id: int) -> None:
    """The provider refused the attempt's call (none existed): it does not count."""
    session.execute(_FORGET, {"attempt_id": attempt_id})


def answered(session: Session, attempt_id: int, at: datetime) -> None:
    """A person answered the attempt's call (the first answer stays)."""
    session.execute(_ANSWERED, {"b_attempt_id": attempt_id, "answered_at": at})


def _key(tenant_id: str, number: str) -> int:
    """A signed 64-bit advisory-lock key for (tenant, number), the same in every process."""
    digest = hashlib.blake2b(f"{tenant_id}|{number}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
