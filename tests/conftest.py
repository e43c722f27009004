from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.db.engine import make_engine
from dialer.db.migrate import upgrade
from dialer.db.models import Base
from tests.services import postgres_or_skip, redis_or_skip

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a real Redis server (database 15 by default); flushed by tests that use it."""
    return redis_or_skip()


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
