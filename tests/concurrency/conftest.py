"""Backends for the concurrency contract tests: memory (driven clock), fakeredis, real Redis.

Each test gets its own key prefix (and, for fakeredis, its own server), and real Redis keys
under it are deleted afterwards, so tests never see each other's holders.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import cast

import fakeredis
import pytest
import redis

from dialer.concurrency.rate.base import CallRateLimiter
from dialer.concurrency.rate.memory import MemoryRateLimiter
from dialer.concurrency.rate.redis import RedisRateLimiter
from dialer.concurrency.semaphore.base import LeaseSemaphore
from dialer.concurrency.semaphore.memory import MemorySemaphore
from dialer.concurrency.semaphore.redis import RedisSemaphore
from tests.concurrency.support import built
from tests.services import delete_prefix, unique_prefix

ALL_BACKENDS = ["memory", "fakeredis", "redis"]
REDIS_BACKENDS = ["fakeredis", "redis"]
#: A lease no test outlives.
LONG_LEASE_S = 60.0


class ManualClock:
    """A clock in seconds that moves only when told to."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def redis_time(client: redis.Redis) -> float:
    seconds, micros = cast(tuple[int, int], client.time())
    return seconds + micros / 1_000_000


def wait_for_redis_time(client: redis.Redis, target: float, timeout_s: float = 5.0) -> None:
    """Poll until the server's clock has passed ``target`` (seconds of Redis TIME)."""
    deadline = time.monotonic() + timeout_s
    while redis_time(client) <= target:
        if time.monotonic() > deadline:
            raise AssertionError("the Redis clock did not move on")
        time.sleep(0.02)


def poll(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Wait until ``condition()`` holds (checked every 20 ms); returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(0.02)
    return time.monotonic() - started


@dataclass
class Backend:
    """A semaphore under test, with the means to let its short leases lapse."""

    name: str
    semaphore: LeaseSemaphore
    prefix: str
    #: A lease the test can let lapse with :meth:`lapse` (seconds).
    short_lease_s: float
    #: Makes every lease of ``short_lease_s`` granted so far expire (drives or polls the clock).
    lapse: Callable[[], None]
    client: redis.Redis | None = None


def redis_client_for(request: pytest.FixtureRequest, name: str) -> redis.Redis:
    if name == "fakeredis":
        return fakeredis.FakeRedis(server=fakeredis.FakeServer())
    url: str = request.getfixturevalue("redis_url")
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)


def _backend(request: pytest.FixtureRequest, name: str) -> Iterator[Backend]:
    prefix = unique_prefix("sem")
    if name == "memory":
        clock = ManualClock()
        lease_s = 10.0
        yield Backend(
            name,
            MemorySemaphore(clock, prefix=prefix),
            prefix,
            lease_s,
            lambda: clock.advance(lease_s),
        )
        return
    client = redis_client_for(request, name)
    lease_s = 0.2

    def lapse() -> None:
        wait_for_redis_time(client, redis_time(client) + lease_s)

    try:
        yield Backend(
            name, built(RedisSemaphore(client, prefix=prefix)), prefix, lease_s, lapse, client
        )
    finally:
        delete_prefix(client, prefix)
        client.close()


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Every semaphore backend in turn."""
    yield from _backend(request, request.param)


@pytest.fixture(params=REDIS_BACKENDS)
def redis_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The Redis semaphore on fakeredis and on a real server."""
    yield from _backend(request, request.param)


@dataclass
class Pacer:
    """A call pacer under test; ``clock`` is set when the test drives time itself."""

    name: str
    limiter: CallRateLimiter
    prefix: str
    clock: ManualClock | None = None
    client: redis.Redis | None = None


@pytest.fixture(params=ALL_BACKENDS)
def pacer(request: pytest.FixtureRequest) -> Iterator[Pacer]:
    """Every call pacer backend in turn."""
    prefix = unique_prefix("cps")
    if request.param == "memory":
        clock = ManualClock()
        yield Pacer("memory", MemoryRateLimiter(clock), prefix, clock=clock)
        return
    client = redis_client_for(request, request.param)
    try:
        yield Pacer(request.param, RedisRateLimiter(client), prefix, client=client)
    finally:
        delete_prefix(client, prefix)
        client.close()
