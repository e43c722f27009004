"""Throughput of the Redis lease semaphore against the raw EVALSHA round trip.

Run from the repository root (``make bench``). Uses DIALER_TEST_REDIS_URL, else
DIALER_REDIS_URL, else redis://127.0.0.1:6379/15; touches only its own keys, and deletes them.
One client, sequential calls, so each figure is bound by round trips, not by Redis:

- ``evalsha_per_s``: ``EVALSHA`` of a script that only returns 1, with no keys or arguments,
  sent with ``client.evalsha``: the same client call the semaphore makes, minus its work;
- ``acquire_release_pairs_per_s``: ``acquire`` then ``release`` of one attempt holding a slot in
  all three layers (campaign, tenant, caller number), limits in force: two round trips a pair.
  Each acquire must be granted and each release must give back a live slot, or the run fails;
  before timing, the caller layer is filled to its limit to check that acquire refuses there;
- ``batched_pairs_per_s``: admitting ``BATCH`` attempts with one ``acquire_many`` and
  releasing them with one ``release_many`` (the reaper's and the reconcile's way);
- ``dispatch_pairs_per_s``: the flow the dialer runs: the scheduler admits a tick's ``BATCH``
  attempts with one ``acquire_many``, and each call's end releases its own slot with one
  ``release`` (its final callback), so 1 + 1/``BATCH`` round trips a pair.

``ratio`` = pairs/s divided by EVALSHA/s. Two round trips a pair cap it at 0.5 (it would take
acquire and release costing no more than a script that does nothing); what is left below is
the scripts' work on the server and the longer commands (keys and arguments). ``ratio_batched``
and ``ratio_dispatch`` are the same for the other two flows. The measures are interleaved in short
slices, so a machine whose load changes during the run skews them alike. Writes
``bench/results/semaphore.json`` and prints it.
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

from dialer.concurrency import Limit, RedisSemaphore, SlotScope, layered_limits

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


def check_limits_in_force(
    semaphore: RedisSemaphore, limits: tuple[Limit, ...], keys: tuple[str, ...]
) -> None:
    """Fill the tightest layer (the caller number's) to its limit: the next acquire must fail."""
    caller = limits[-1]
    if caller.max_holders is None:
        raise RuntimeError("the benchmark's caller layer must be capped")
    fillers = [f"filler-{n}" for n in range(caller.max_holders)]
    for holder in fillers:
        if not semaphore.acquire(holder, limits, 30.0):
            raise RuntimeError("a holder below the limit was refused")
    refused = semaphore.acquire("one-too-many", limits, 30.0)
    if refused or refused.full != caller.key:
        raise RuntimeError(f"the caller limit was not enforced: {refused}")
    if not all(semaphore.release_many([(h, keys) for h in fillers])):
        raise RuntimeError("a filler had no live slot to release")


def main() -> None:
    url = (
        os.environ.get("DIALER_TEST_REDIS_URL")
        or os.environ.get("DIALER_REDIS_URL")
        or "redis://127.0.0.1:6379/15"
    )
    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
    prefix = f"bench:{uuid.uuid4().hex}:sem:"
    semaphore = RedisSemaphore(client, prefix=prefix)
    # A fresh store admits nothing until it is built (the dialer rebuilds it from the
    # database at the first acquire); there is nothing to restore here.
    semaphore.finish_rebuild(semaphore.begin_rebuild())
    scope = SlotScope("campaign-1", "tenant-1", "+14155550100")
    limits = layered_limits(scope, 50, 200, BATCH, prefix=prefix)
    keys = scope.keys(prefix)
    trivial = cast(str, client.script_load("return 1"))

    def acquire_release(i: int) -> None:
        holder = str(i)
        if not semaphore.acquire(holder, limits, 30.0):
            raise RuntimeError("the benchmark's only holder was refused")
        if not semaphore.release(holder, keys):
            raise RuntimeError("the benchmark's holder had no live slot to release")

    def batched(i: int) -> None:
        holders = [f"{i}-{n}" for n in range(BATCH)]
        if not all(semaphore.acquire_many([(h, limits) for h in holders], 30.0)):
            raise RuntimeError("the benchmark's holders were refused")
        if not all(semaphore.release_many([(h, keys) for h in holders])):
            raise RuntimeError("a batched holder had no live slot to release")

    def dispatch(i: int) -> None:
        holders = [f"d{i}-{n}" for n in range(BATCH)]
        if not all(semaphore.acquire_many([(h, limits) for h in holders], 30.0)):
            raise RuntimeError("the benchmark's holders were refused")
        for holder in holders:
            if not semaphore.release(holder, keys):
                raise RuntimeError("a dispatched holder had no live slot to release")

    try:
        check_limits_in_force(semaphore, limits, keys)
        rates = interleaved_rates(
            {
                "evalsha": lambda _: client.evalsha(trivial, 0),
                "pairs": acquire_release,
                "batched": batched,
                "dispatch": dispatch,
            }
        )
        if any(semaphore.count(key) for key in keys):
            raise RuntimeError("holders were left behind: a release did not release")
        server = cast(dict[str, Any], client.info("server"))
    finally:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()

    evalsha, pairs = rates["evalsha"], rates["pairs"]
    batched_pairs, dispatch_pairs = rates["batched"] * BATCH, rates["dispatch"] * BATCH
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
        "dispatch_pairs_per_s": round(dispatch_pairs),
        "ratio_dispatch": round(dispatch_pairs / evalsha, 3),
        "target_ratio": 0.5,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
