"""Tenants and API keys. Keys are shown once at creation; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.db.models import ApiKey, Tenant
from dialer.errors import NotFound

KEY_PREFIX = "dk_"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    tenant_id: str
    user_id: str
    key: str  # the only time the clear key exists


def hash_key(key: str) -> str:
    """SHA-256 hex: keys carry 256 random bits, so a slow password hash buys nothing."""
    return hashlib.sha256(key.encode()).hexdigest()


def ensure_tenant(session: Session, user_id: str, *, now: datetime) -> Tenant:
    tenant = session.scalars(sa.select(Tenant).where(Tenant.user_id == user_id)).one_or_none()
    if tenant is None:
        tenant = Tenant(user_id=user_id, created_at=now)
        session.add(tenant)
        session.flush()
    return tenant


def issue_key(session: Session, user_id: str, *, now: datetime) -> IssuedKey:
    """A new API key for ``user_id`` (creating the tenant on first use)."""
    tenant = ensure_tenant(session, user_id, now=now)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiKey(tenant_id=tenant.id, key_hash=hash_key(key), prefix=key[:10], created_at=now)
    )
    session.flush()
    return IssuedKey(tenant_id=tenant.id, user_id=user_id, key=key)


def authenticate(session: Session, key: str, user_id: str) -> tuple[Tenant, ApiKey] | None:
    """The tenant a valid, unrevoked key of ``user_id`` belongs to, with the key's row; None
    otherwise."""
    row = session.execute(
        sa.select(Tenant, ApiKey)
        .join(ApiKey, ApiKey.tenant_id == Tenant.id)
        .where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    ).one_or_none()
    if row is None:
        return None
    tenant, api_key = row
    if not hmac.compare_digest(tenant.user_id, user_id) or not hmac.compare_digest(
        api_key.key_hash, hash_key(key)
    ):
        return None
    return tenant, api_key


def key_id(session: Session, tenant_id: str, key: str) -> str | None:
    """The id of the tenant's API key ``key`` (to name who recorded something); None when it
    is not one of the tenant's."""
    return session.scalar(
        sa.select(ApiKey.id).where(ApiKey.key_hash == hash_key(key), ApiKey.tenant_id == tenant_id)
    )


def tenant_id_of(session: Session, user_id: str) -> str:
    """The id of the tenant whose ``X-User-ID`` is ``user_id``, or :class:`NotFound`."""
    found = session.scalar(sa.select(Tenant.id).where(Tenant.user_id == user_id))
    if found is None:
        raise NotFound(f"no tenant has user id {user_id!r}")
    return found
