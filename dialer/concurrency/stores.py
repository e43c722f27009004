"""Opening the concurrency stores: Redis when a URL is configured, memory in embedded mode."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from dialer.concurrency.rate.base import CallRateLimiter
from dialer.concurrency.rate.memory import MemoryRateLimiter
from dialer.concurrency.rate.redis import RedisRateLimiter
from dialer.concurrency.semaphore.base import LeaseSemaphore
from dialer.concurrency.semaphore.memory import MemorySemaphore
from dialer.concurrency.semaphore.redis import RedisSemaphore

#: Network timeouts of the store's Redis connections, in seconds.
CONNECT_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class ConcurrencyStores:
    """The semaphore and the call pacer of one process; open once and pass down."""

    semaphore: LeaseSemaphore
    pacer: CallRateLimiter


def open_stores(redis_url: str | None) -> ConcurrencyStores:
    """Stores on ``redis_url`` (``Settings.redis_url``), or in memory when it is None.

    In memory, the limits hold only within this process: right for embedded mode, where the
    API, scheduler and tasks share one process, and wrong for anything else.
    """
    if redis_url is None:
        return ConcurrencyStores(MemorySemaphore(), MemoryRateLimiter())
    client = redis.Redis.from_url(
        redis_url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=COMMAND_TIMEOUT_S
    )
    return ConcurrencyStores(RedisSemaphore(client), RedisRateLimiter(client))
