from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer import redaction
from dialer.db.engine import make_engine
from dialer.db.migrate import upgrade
from dialer.db.models import Base
from tests.services import (
    delete_prefix,
    postgres_or_skip,
    rabbitmq_or_skip,
    rabbitmq_vhost,
    redis_or_skip,
    unique_prefix,
)

BACKENDS = ["sqlite", "postgresql"]
#: Fixtures (and parameters of parametrised fixtures) that reach a real server.
_POSTGRES = {"postgres_url", "postgresql"}
_REDIS = {"redis_url", "real_redis", "redis"}
_RABBITMQ = {"rabbitmq_url", "rabbitmq"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test by the servers it reaches (``postgres``, ``redis``, ``rabbitmq``): by
    the fixtures it uses, and by the backend its parametrised fixtures run it on. ``make
    unit`` runs the tests that need none, nor the dialer's processes (``e2e``)."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            used |= {value for value in callspec.params.values() if isinstance(value, str)}
        if used & _POSTGRES:
            item.add_marker(pytest.mark.postgres)
        if used & _REDIS:
            item.add_marker(pytest.mark.redis)
        if used & _RABBITMQ:
            item.add_marker(pytest.mark.rabbitmq)


@pytest.fixture(scope="session", autouse=True)
def _logs_as_in_production() -> None:
    """Log records are masked as every dialer process masks them (phone numbers)."""
    redaction.install()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a real Redis server (database 15 by default); flushed by tests that use it."""
    return redis_or_skip()


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """URL of a virtual host of this test session's own on a real RabbitMQ (deleted at the
    end): Celery's queue names are fixed, and other test processes share the server."""
    with rabbitmq_vhost(rabbitmq_or_skip()) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a real PostgreSQL server."""
    return postgres_or_skip()


def scratch_database_url(backend: str, tmp: Path) -> tuple[str, Callable[[], None]]:
    """A new, empty database of ``backend`` and a callable that drops it."""
    if backend == "sqlite":
        return f"sqlite:///{tmp / f'{uuid.uuid4().hex}.db'}", lambda: None
    server = sa.make_url(postgres_or_skip())
    name = f"dialer_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return server.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database on each backend, shared by the session's tests of that backend."""
    url, drop = scratch_database_url(request.param, tmp_path_factory.mktemp("db"))
    try:
        upgrade(url)
        yield url
    finally:
        drop()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a migrated database, emptied after the test."""
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
        engine.dispose()


@pytest.fixture
def real_redis(redis_url: str) -> Iterator[tuple[redis.Redis, str]]:
    """A client on the real test server and a fresh key prefix, deleted afterwards."""
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=10)
    prefix = unique_prefix("sem")
    try:
        yield client, prefix
    finally:
        delete_prefix(client, prefix)
        client.close()
