"""The Redis semaphore under real concurrency: many processes, a killed holder."""

from __future__ import annotations

import multiprocessing
import signal
import subprocess
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import cast

import pytest
import redis

from dialer.concurrency.semaphore.base import Reaped, Truth
from dialer.concurrency.semaphore.redis import RedisSemaphore
from tests.concurrency import processes
from tests.concurrency.conftest import LONG_LEASE_S, poll
from tests.concurrency.support import built

#: Runs the dialer's processes.
pytestmark = pytest.mark.e2e

WORKERS = 8
CYCLES = 5_000
REPO = Path(__file__).resolve().parents[2]


def test_many_processes_never_exceed_the_limit_and_leak_nothing(
    redis_url: str, real_redis: tuple[redis.Redis, str]
) -> None:
    client, prefix = real_redis
    key = processes.stress_key(prefix)
    semaphore = built(RedisSemaphore(client, prefix=prefix))
    peak = {"zcard": 0, "count": 0, "samples": 0}
    done = threading.Event()

    def observe() -> None:
        observer = redis.Redis.from_url(redis_url, socket_timeout=10)
        while not done.is_set():
            peak["zcard"] = max(peak["zcard"], cast(int, observer.zcard(key)))
            peak["count"] = max(peak["count"], semaphore.count(key))
            peak["samples"] += 1
            done.wait(0.001)
        observer.close()

    watcher = threading.Thread(target=observe)
    watcher.start()
    try:
        with ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [
                pool.submit(processes.stress_worker, redis_url, prefix, worker, CYCLES)
                for worker in range(WORKERS)
            ]
            results = [future.result(timeout=300) for future in futures]
    finally:
        done.set()
        watcher.join()

    granted = sum(g for g, _ in results)
    refused = sum(r for _, r in results)
    assert granted + refused == WORKERS * CYCLES
    assert refused > 0, "the limit was never reached: the test proves nothing"
    assert peak["samples"] > 100
    assert 0 < peak["zcard"] <= processes.STRESS_LIMIT
    assert peak["count"] <= processes.STRESS_LIMIT
    assert client.exists(key) == 0  # every slot came back: nothing leaked
    assert semaphore.reap() == []


def start_holder(redis_url: str, prefix: str, lease_s: float, n: int) -> subprocess.Popen[str]:
    command = ["hold", redis_url, prefix, str(lease_s), str(n)]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.concurrency.processes", *command],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL


def test_a_killed_holders_slots_come_back_when_its_lease_expires(
    redis_url: str, real_redis: tuple[redis.Redis, str]
) -> None:
    """The documented bound: a dead holder's slots are free at most one lease later."""
    client, prefix = real_redis
    key = processes.hold_key(prefix)
    semaphore = built(RedisSemaphore(client, prefix=prefix))
    lease_s = 1.0
    holder = start_holder(redis_url, prefix, lease_s, 3)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        assert semaphore.count(key) == 3
    finally:
        kill(holder)
    poll(lambda: semaphore.count(key) == 0, lease_s + 2.0, "slots freed by lease expiry")
    reaped = semaphore.reap()
    assert sorted(reaped) == [Reaped(key, f"doomed-{i}") for i in range(3)]
    assert semaphore.reaped_total == 3
    assert client.exists(key) == 0


def test_a_killed_holders_slots_come_back_at_the_next_reconcile(
    redis_url: str, real_redis: tuple[redis.Redis, str]
) -> None:
    """With a long lease the database (which knows the attempts ended) frees them sooner."""
    client, prefix = real_redis
    key = processes.hold_key(prefix)
    semaphore = built(RedisSemaphore(client, prefix=prefix))
    holder = start_holder(redis_url, prefix, LONG_LEASE_S, 3)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
    finally:
        kill(holder)
    assert semaphore.count(key) == 3  # the lease alone would hold them for a minute
    ended = Truth(ended={f"doomed-{i}" for i in range(3)})
    result = semaphore.reconcile(ended, LONG_LEASE_S)
    assert result.removed == {key: frozenset(f"doomed-{i}" for i in range(3))}
    assert semaphore.count(key) == 0
