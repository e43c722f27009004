"""Pieces the benchmarks share (not a benchmark itself: ``make bench`` skips ``_*.py``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

PG = os.environ.get("DIALER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("DIALER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
_ZONES = ("UTC", "Asia/Tokyo", "America/New_York", "Asia/Kolkata", "America/Los_Angeles")


def callable_zone() -> str:
    """A zone where it is inside legal calling hours right now (benches run at any hour)."""
    now = datetime.now(UTC)
    return next((z for z in _ZONES if 9 <= now.astimezone(ZoneInfo(z)).hour < 20), "UTC")


@contextmanager
def scratch_database() -> Iterator[str]:
    """A new, empty PostgreSQL database on the bench server, dropped afterwards."""
    server = sa.make_url(PG)
    name = f"dialer_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def own_number(session: Session, tenant_id: str, number: str) -> str:
    """``number`` (E.164) registered to the tenant, as ``POST /phone_number`` registers it
    once the provider confirms it (the benches' simulated accounts own every number)."""
    from dialer.db.models import PhoneNumber

    session.add(PhoneNumber(tenant_id=tenant_id, number=number, provider_status="owned"))
    session.flush()
    return number
