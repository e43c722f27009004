"""Reaching the real services the integration tests need.

In CI (``CI=true``) a missing service fails the test that needs it; on a laptop without the
service the test is skipped and the in-memory adapters still run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pytest
import redis

IN_CI = os.environ.get("CI", "").lower() == "true"

REDIS_URL = os.environ.get("DIALER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get(
    "DIALER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
#: A RabbitMQ whose user may create virtual hosts (``rabbitmqctl`` on this machine does it).
RABBITMQ_URL = os.environ.get("DIALER_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
#: Virtual hosts the tests create are named so; one older than this is a dead run's.
VHOST_PREFIX = "dialer-test-"
STALE_VHOST_S = 3 * 3600


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


def rabbitmq_or_skip(url: str = RABBITMQ_URL) -> str:
    """``url`` if RabbitMQ answers there and ``rabbitmqctl`` can give a test a virtual host of
    its own; fail in CI, skip elsewhere."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1, timeout=5)
    except Exception as exc:
        unavailable("RabbitMQ", exc)
    if shutil.which("rabbitmqctl") is None:
        unavailable("RabbitMQ", "rabbitmqctl is not on PATH (it creates the tests' vhosts)")
    return url


def _rabbitmqctl(*args: str) -> str:
    done = subprocess.run(
        ["rabbitmqctl", "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr.strip()[-500:]}")
    return done.stdout


@contextmanager
def rabbitmq_vhost(url: str = RABBITMQ_URL) -> Iterator[str]:
    """The URL of a new, empty virtual host on ``url``'s RabbitMQ, deleted afterwards.

    Celery's queue names are fixed (``dial``, ``events``, ``celery_delayed_*``): each fleet of
    workers under test gets a vhost of its own, so test processes sharing the server never
    take each other's tasks. A vhost left by a run that died is deleted after a few hours.
    """
    parts = urlsplit(url)
    user = unquote(parts.username or "guest")
    now = int(time.time())
    try:
        vhosts = _rabbitmqctl("list_vhosts", "name").split()
    except (RuntimeError, subprocess.TimeoutExpired) as exc:  # not allowed (no Erlang cookie)
        unavailable("RabbitMQ", exc)
    for line in vhosts:
        if line.startswith(VHOST_PREFIX):
            created = line.removeprefix(VHOST_PREFIX).split("-", 1)[0]
            if created.isdigit() and now - int(created) > STALE_VHOST_S:
                _rabbitmqctl("delete_vhost", line)
    vhost = f"{VHOST_PREFIX}{now}-{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        yield urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))
    finally:
        _rabbitmqctl("delete_vhost", vhost)


def unique_prefix(kind: str) -> str:
    """A Redis key prefix no other test uses."""
    return f"test:{uuid.uuid4().hex[:12]}:{kind}:"


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
