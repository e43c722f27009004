"""Reaching the real services the integration tests need.

In CI (``CI=true``) a missing service fails the test that needs it; on a laptop without the
service the test is skipped and the in-memory adapters still run.
"""

from __future__ import annotations

import os
import uuid

import pytest
import redis

IN_CI = os.environ.get("CI", "").lower() == "true"

REDIS_URL = os.environ.get("DIALER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get(
    "DIALER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def unavailable(service: str, why: object) -> None:
    """Fail in CI, skip elsewhere: a service the test needs cannot be reached."""
    message = f"{service} is not reachable: {why}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def redis_or_skip(url: str = REDIS_URL) -> str:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    finally:
        client.close()
    return url


def postgres_or_skip(url: str = POSTGRES_URL) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        unavailable("PostgreSQL", exc.orig)
    finally:
        engine.dispose()
    return url


def unique_prefix(kind: str) -> str:
    """A Redis key prefix no other test uses."""
    return f"test:{uuid.uuid4().hex[:12]}:{kind}:"


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
