"""Opening the concurrency stores: Redis in a distributed deployment, memory when embedded."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from dialer.concurrency.rate.base import CallRateLimiter
from dialer.concurrency.rate.memory import MemoryRateLimiter
from dialer.concurrency.rate.redis import RedisRateLimiter
from dialer.concurrency.semaphore.memory import MemorySemaphore
from dialer.concurrency.semaphore.redis import RedisSemaphore
from dialer.concurrency.slots import CallSlots
from dialer.settings import Settings


@dataclass(frozen=True, slots=True)
class ConcurrencyStores:
    """The call slots and the call pacer of one process; open once and pass down."""

    slots: CallSlots
    pacer: CallRateLimiter

    @classmethod
    def in_memory(cls, clock: Callable[[], float] = time.monotonic) -> ConcurrencyStores:
        """Stores for one process, on ``clock`` (seconds; tests drive their own)."""
        return cls(CallSlots(MemorySemaphore(clock)), MemoryRateLimiter(clock))

    @classmethod
    def on_redis(cls, client: redis.Redis) -> ConcurrencyStores:
        """Stores every process sharing ``client``'s server sees."""
        return cls(CallSlots(RedisSemaphore(client)), RedisRateLimiter(client))


def open_stores(settings: Settings, client: redis.Redis | None = None) -> ConcurrencyStores:
    """Stores on Redis (``client``, opened with :func:`~dialer.concurrency.connection.open_redis`),
    or in memory in embedded mode.

    In memory, the limits hold only within this process: right for embedded mode, where one
    scheduler process dials, and wrong for anything else.
    """
    if settings.embedded:
        return ConcurrencyStores.in_memory()
    if client is None:
        from dialer.concurrency.connection import open_redis

        client = open_redis(settings)
    return ConcurrencyStores.on_redis(client)
