"""Code the multi-process tests run in other processes (spawned, or ``python -m``).

``python -m tests.concurrency.processes hold URL PREFIX LEASE_S N`` acquires N slots on one
key, prints ``ready`` and then waits to be killed.
"""

from __future__ import annotations

import random
import sys
import time
from collections import deque

import redis

from dialer.concurrency.semaphore.base import Limit
from dialer.concurrency.semaphore.redis import RedisSemaphore

STRESS_LIMIT = 50
#: Each worker holds up to this many slots at once, so 8 workers want more than the limit.
MAX_HELD_PER_WORKER = 12


def stress_key(prefix: str) -> str:
    return f"{prefix}campaign:stress"


def hold_key(prefix: str) -> str:
    return f"{prefix}campaign:held"


def stress_worker(url: str, prefix: str, worker: int, cycles: int) -> tuple[int, int]:
    """``cycles`` acquires on the stress key, each holding its slot a random few cycles.

    Returns (granted, refused). Every slot is released before returning.
    """
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
    semaphore = RedisSemaphore(client, prefix=prefix)
    key = stress_key(prefix)
    limits = [Limit(key, STRESS_LIMIT)]
    rng = random.Random(worker)
    held: deque[str] = deque()
    granted = refused = 0
    for n in range(cycles):
        holder = f"w{worker}-{n}"
        if semaphore.acquire(holder, limits, 60.0):
            granted += 1
            held.append(holder)
        else:
            refused += 1
        while held and len(held) > rng.randint(0, MAX_HELD_PER_WORKER):
            semaphore.release(held.popleft(), [key])
    while held:
        semaphore.release(held.popleft(), [key])
    client.close()
    return granted, refused


def hold(url: str, prefix: str, lease_s: float, n: int) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
    semaphore = RedisSemaphore(client, prefix=prefix)
    key = hold_key(prefix)
    for i in range(n):
        if not semaphore.acquire(f"doomed-{i}", [Limit(key, n)], lease_s):
            raise SystemExit(f"slot {i} refused")
    print("ready", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command != "hold":
        raise SystemExit(f"unknown command {command!r}")
    hold(args[0], args[1], float(args[2]), int(args[3]))
