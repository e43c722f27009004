"""How the account's calls per second are shared between tenants, on Redis, by real threads.

Run from the repository root (``make bench``). Uses DIALER_TEST_REDIS_URL, else
redis://127.0.0.1:6379/15; touches only its own keys, and deletes them. ``ACCOUNT_CPS`` call
starts per second shared by three tenants with 16, 4 and 1 worker threads, each thread trying
again after exactly the wait it is given (what a dial task does), for ``SECONDS``:

- ``shared``: with the tenants' shares (:mod:`dialer.concurrency.rate.fair`);
- ``first_come``: the account's pace alone, as before the sharing.

For each: the starts of each tenant and its fraction of them (the fair split is a third each),
``starts_per_s`` against ``ACCOUNT_CPS`` (it may never be above; below is capacity lost), and
the lone thread's median and worst wait between asking and starting. Writes
``bench/results/fair_pace.json`` and prints it.
"""

from __future__ import annotations

import json
import platform
import statistics
import threading
import time
import uuid
from pathlib import Path

import redis
from _shared import REDIS

from dialer.concurrency import RedisRateLimiter, tenant_pace

ACCOUNT_CPS = 50.0
SECONDS = 4.0
WORKERS = {"large": 16, "medium": 4, "small": 1}
RESULTS = Path("bench/results/fair_pace.json")


def run(client: redis.Redis, shared: bool) -> dict[str, object]:
    prefix = f"bench:fair:{uuid.uuid4().hex[:8]}:"
    limiter = RedisRateLimiter(client)
    starts: dict[str, list[float]] = {tenant: [] for tenant in WORKERS}
    small_waits: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + SECONDS

    def work(tenant: str) -> None:
        rates, share = tenant_pace("bench", tenant, account_cps=ACCOUNT_CPS, prefix=prefix)
        asked = time.monotonic()
        while (now := time.monotonic()) < stop_at:
            wait_s = limiter.try_acquire(rates, share if shared else None)
            if wait_s == 0.0:
                with lock:
                    starts[tenant].append(now)
                    if tenant == "small":
                        small_waits.append(now - asked)
                asked = time.monotonic()
            time.sleep(wait_s)

    threads = [
        threading.Thread(target=work, args=(tenant,))
        for tenant, count in WORKERS.items()
        for _ in range(count)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    total = sum(len(s) for s in starts.values())
    every = sorted(t for s in starts.values() for t in s)
    return {
        "starts": {tenant: len(s) for tenant, s in starts.items()},
        "fraction": {tenant: round(len(s) / total, 3) for tenant, s in starts.items()},
        "starts_per_s": round((total - 1) / (every[-1] - every[0]), 2),
        "small_wait_p50_ms": round(statistics.median(small_waits) * 1000, 1),
        "small_wait_max_ms": round(max(small_waits) * 1000, 1),
    }


def main() -> None:
    client = redis.Redis.from_url(REDIS, socket_connect_timeout=2, socket_timeout=10)
    result = {
        "account_cps": ACCOUNT_CPS,
        "seconds": SECONDS,
        "workers": WORKERS,
        "shared": run(client, shared=True),
        "first_come": run(client, shared=False),
        "python": platform.python_version(),
    }
    client.close()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
