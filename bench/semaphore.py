"""Throughput of the Redis lease semaphore against the raw EVALSHA round trip.

Run from the repository root (``make bench``). Uses DIALER_TEST_REDIS_URL, else
DIALER_REDIS_URL, else redis://127.0.0.1:6379/15; touches only its own keys, and deletes them.
One client, sequential calls, so each figure is bound by round trips, not by Redis:

- ``evalsha_per_s``: a script that only returns 1;
- ``acquire_release_pairs_per_s``: ``acquire`` then ``release`` of one attempt holding a slot in
  all three layers (campaign, tenant, caller number), limits in force: two round trips a pair;
- ``batched_pairs_per_s``: the scheduler's flow, admitting a tick's ``BATCH`` attempts with one
  ``acquire_many`` and releasing ended ones with one ``release_many``.

``ratio`` = pairs/s divided by EVALSHA/s. Two round trips a pair cap it at 0.5; what is left
below is the scripts' work and redis-py's argument packing. ``ratio_batched`` is the same for
the batched flow. The measures are interleaved in short slices, so a machine whose load
changes during the run skews them alike. Writes ``bench/results/semaphore.json`` and prints it.
"""

from __future__ import annotations

import json
import os
import platform
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import redis

from dialer.concurrency import RedisSemaphore, SlotScope, layered_limits

SECONDS_PER_MEASURE = 3.0
SLICES = 6
BATCH = 10
RESULTS = Path("bench/results/semaphore.json")

Operation = Callable[[int], object]


def interleaved_rates(operations: dict[str, Operation]) -> dict[str, float]:
    """Calls per second of each ``operation(i)``, timed in alternating slices."""
    done = dict.fromkeys(operations, 0)
    spent = dict.fromkeys(operations, 0.0)
    for operation in operations.values():  # warm-up: connections, script cache
        for i in range(20):
            operation(-i - 1)
    for _ in range(SLICES):
        for name, operation in operations.items():
            started = time.perf_counter()
            deadline = started + SECONDS_PER_MEASURE / SLICES
            while time.perf_counter() < deadline:
                for _ in range(10):
                    operation(done[name])
                    done[name] += 1
            spent[name] += time.perf_counter() - started
    return {name: done[name] / spent[name] for name in operations}


def main() -> None:
    url = (
        os.environ.get("DIALER_TEST_REDIS_URL")
        or os.environ.get("DIALER_REDIS_URL")
        or "redis://127.0.0.1:6379/15"
    )
    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
    prefix = f"bench:{uuid.uuid4().hex}:sem:"
    semaphore = RedisSemaphore(client, prefix=prefix)
    scope = SlotScope("campaign-1", "tenant-1", "+14155550100")
    limits = layered_limits(scope, 50, 200, BATCH, prefix=prefix)
    keys = scope.keys(prefix)
    trivial = client.register_script("return 1")

    def acquire_release(i: int) -> None:
        holder = str(i)
        if not semaphore.acquire(holder, limits, 30.0):
            raise RuntimeError("the benchmark's only holder was refused")
        semaphore.release(holder, keys)

    def batched(i: int) -> None:
        holders = [f"{i}-{n}" for n in range(BATCH)]
        if not all(semaphore.acquire_many([(h, limits) for h in holders], 30.0)):
            raise RuntimeError("the benchmark's holders were refused")
        semaphore.release_many([(h, keys) for h in holders])

    try:
        rates = interleaved_rates(
            {"evalsha": lambda _: trivial(), "pairs": acquire_release, "batched": batched}
        )
        server = cast(dict[str, Any], client.info("server"))
    finally:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()

    evalsha, pairs, batched_pairs = rates["evalsha"], rates["pairs"], rates["batched"] * BATCH
    result = {
        "redis_version": server["redis_version"],
        "python": platform.python_version(),
        "seconds_per_measure": SECONDS_PER_MEASURE,
        "keys_per_acquire": len(limits),
        "evalsha_per_s": round(evalsha),
        "acquire_release_pairs_per_s": round(pairs),
        "ratio": round(pairs / evalsha, 3),
        "batch": BATCH,
        "batched_pairs_per_s": round(batched_pairs),
        "ratio_batched": round(batched_pairs / evalsha, 3),
        "target_ratio": 0.5,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
