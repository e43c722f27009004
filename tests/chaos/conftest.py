"""Fixtures of the chaos run: PostgreSQL and Redis servers of its own, made fresh per test.

Without the server programs the run is skipped on a laptop and fails in CI (``CI=true``),
as every test that needs a service does (``tests/services.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.chaos.servers import PostgresServer, RedisServer, ServerDir, Servers, find_binaries
from tests.services import unavailable


@pytest.fixture
def chaos_servers() -> Iterator[Servers]:
    """A throwaway PostgreSQL cluster (with an empty ``dialer`` database) and a Redis that
    keeps nothing on disk, on free ports of 127.0.0.1; killed and deleted afterwards."""
    binaries = find_binaries()
    if binaries.missing():
        unavailable("the chaos run's own servers", f"{', '.join(binaries.missing())} not found")
    assert binaries.pg_bin is not None
    assert binaries.redis_server is not None
    with ExitStack() as stack:
        home = ServerDir()
        stack.callback(home.remove)
        postgres = PostgresServer(binaries.pg_bin, home)
        stack.callback(postgres.stop)
        postgres.init()
        redis = RedisServer(binaries.redis_server, home)
        stack.callback(redis.kill)
        redis.start()
        yield Servers(postgres, redis)
