"""Listing and revoking API keys (issuing them is :func:`dialer.services.tenancy.issue_key`).

A key is named by its prefix, the first characters listings show; never by its hash, and the
key itself is never stored. Revocation takes effect on the next request: authentication
reads the key's row every time, nothing is cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.db.models import ApiKey, Tenant
from dialer.errors import Conflict, NotFound
from dialer.services.tenancy import hash_key


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What may be shown of a key."""

    prefix: str
    user_id: str
    created_at: datetime
    revoked_at: datetime | None


def list_keys(session: Session, user_id: str) -> list[KeyInfo]:
    """The keys of ``user_id``'s tenant, oldest first; :class:`NotFound` for an unknown user."""
    tenant = session.scalars(sa.select(Tenant).where(Tenant.user_id == user_id)).one_or_none()
    if tenant is None:
        raise NotFound(f"no tenant has user id {user_id!r}")
    rows = session.scalars(
        sa.select(ApiKey).where(ApiKey.tenant_id == tenant.id).order_by(ApiKey.created_at)
    )
    return [KeyInfo(r.prefix, user_id, r.created_at, r.revoked_at) for r in rows]


def revoke(session: Session, prefix: str, *, now: datetime) -> KeyInfo:
    """Revoke the one key whose prefix starts with ``prefix`` (or that is ``prefix``, given
    the whole key). :class:`NotFound` when none matches, :class:`Conflict` listing the
    candidates when several do. Revoking a revoked key keeps its first revocation time."""
    prefix = prefix.strip()
    if not prefix:
        raise NotFound("no API key has an empty prefix")
    stmt = sa.select(ApiKey, Tenant.user_id).join(Tenant, Tenant.id == ApiKey.tenant_id)
    matches = session.execute(stmt.where(ApiKey.key_hash == hash_key(prefix))).all()
    if not matches:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matches = session.execute(
            stmt.where(ApiKey.prefix.like(f"{escaped}%", escape="\\")).order_by(ApiKey.prefix)
        ).all()
    if not matches:
        raise NotFound(f"no API key starts with {prefix!r}")
    if len(matches) > 1:
        listed = ", ".join(f"{key.prefix} ({user})" for key, user in matches)
        raise Conflict(f"{prefix!r} is ambiguous: {listed}; give more of the key")
    ((key, user_id),) = matches
    if key.revoked_at is None:
        key.revoked_at = now
        session.flush()
    return KeyInfo(key.prefix, user_id, key.created_at, key.revoked_at)
