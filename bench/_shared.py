"""Pieces the benchmarks share (not a benchmark itself: ``make bench`` skips ``_*.py``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.policy.open_places import WIDE_PLACES, OpenPlace, place_open

PG = os.environ.get("DIALER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("DIALER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def callable_place() -> OpenPlace:
    """A place of millions of numbers whose calling hours stay open for the next hours, as
    the dialer's rules read them (benches run at any hour of any day)."""
    return place_open(datetime.now(UTC), places=WIDE_PLACES)


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
