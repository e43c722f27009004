"""Call pacing: the contract on every backend, and the rate over time.

Memory runs on a driven clock. On Redis, time is the server's, so the tests there only use
what happens at one instant, or a fast rate over a fraction of a second, following the waits
the limiter returns (what a worker would do).
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import cast

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from dialer.concurrency.keys import cps_rates
from dialer.concurrency.rate.base import Rate, gcra_take, gcra_wait_s
from dialer.concurrency.rate.memory import MemoryRateLimiter
from dialer.concurrency.rate.redis import RedisRateLimiter
from dialer.errors import ConcurrencyError
from tests.concurrency.conftest import REDIS_BACKENDS, ManualClock, Pacer, redis_client_for


def at_once(pacer: Pacer, rates: tuple[Rate, ...], workers: int) -> list[float]:
    """``workers`` threads each try once, released together; their results."""
    barrier = threading.Barrier(workers)
    results: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        barrier.wait()
        wait_s = pacer.limiter.try_acquire(rates)
        with lock:
            results.append(wait_s)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_workers_at_one_instant_get_one_call_per_second_between_them(pacer: Pacer) -> None:
    rates = cps_rates("twilio:AC1", prefix=pacer.prefix)  # the default: 1 call/s per account
    started = time.monotonic()
    results = at_once(pacer, rates, workers=8)
    # "At once" on the real clock (Redis's time) is as close together as the machine runs
    # the threads: under load, tries a second apart are due a start each.
    spread_s = time.monotonic() - started
    assert 1 <= results.count(0.0) <= 1 + int(spread_s)
    waits = [w for w in results if w > 0]
    assert len(waits) == 8 - results.count(0.0)
    assert all(0 < w <= 1.0 for w in waits)


def test_callers_are_paced_independently(pacer: Pacer) -> None:
    account = Rate(f"{pacer.prefix}account:a", per_s=100, burst=100)  # never the limit here

    def rates(caller: str) -> tuple[Rate, ...]:
        return (account, *cps_rates("a", caller, caller_cps=1, prefix=pacer.prefix)[1:])

    assert pacer.limiter.try_acquire(rates("+1")) == 0.0
    assert 0 < pacer.limiter.try_acquire(rates("+1")) <= 1.0
    assert pacer.limiter.try_acquire(rates("+2")) == 0.0


def test_a_caller_refusal_burns_no_account_capacity(pacer: Pacer) -> None:
    account = Rate(f"{pacer.prefix}account:a", per_s=1, burst=2)

    def rates(caller: str) -> tuple[Rate, ...]:
        return (account, Rate(f"{pacer.prefix}caller:{caller}", per_s=1))

    assert pacer.limiter.try_acquire(rates("+1")) == 0.0  # account: 1 of 2
    assert pacer.limiter.try_acquire(rates("+1")) > 0  # the caller is paced...
    assert pacer.limiter.try_acquire(rates("+2")) == 0.0  # ...and the account kept its slot
    assert pacer.limiter.try_acquire(rates("+3")) > 0  # now the account is spent


def test_a_burst_is_admitted_at_once_then_paced(pacer: Pacer) -> None:
    rates = (Rate(f"{pacer.prefix}account:b", per_s=2, burst=3),)
    assert [pacer.limiter.try_acquire(rates) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert 0 < pacer.limiter.try_acquire(rates) <= 0.5


def test_the_script_cache_flushed_by_a_restart_is_reloaded(
    request: pytest.FixtureRequest,
) -> None:
    for name in REDIS_BACKENDS:
        client = redis_client_for(request, name)
        limiter = RedisRateLimiter(client)
        key = f"test:flush:{time.monotonic_ns()}"
        try:
            client.script_flush()
            assert limiter.try_acquire([Rate(key, per_s=1)]) == 0.0
            client.script_flush()
            assert limiter.try_acquire([Rate(key, per_s=1)]) > 0
            assert 0 < cast(int, client.pttl(key)) <= 1001  # an idle key expires on its own
        finally:
            client.delete(key)
            client.close()


def test_the_wait_is_the_time_to_the_next_permitted_instant() -> None:
    clock = ManualClock()
    limiter = MemoryRateLimiter(clock)
    rates = (Rate("account", per_s=1),)
    assert limiter.try_acquire(rates) == 0.0
    clock.advance(0.25)
    assert limiter.try_acquire(rates) == pytest.approx(0.75)
    clock.advance(0.75)
    assert limiter.try_acquire(rates) == 0.0


def test_workers_following_the_waits_use_the_rate_and_never_exceed_it() -> None:
    """Five workers over 60 simulated seconds, each sleeping exactly the wait it is given."""
    clock = ManualClock(start=0.0)
    limiter = MemoryRateLimiter(clock)
    rates = cps_rates("acct", "+1", account_cps=1.0, caller_cps=2.0)
    next_try = dict.fromkeys(range(5), 0.0)
    admitted: list[float] = []
    while True:
        worker = min(next_try, key=lambda w: (next_try[w], w))
        clock.now = next_try[worker]
        if clock.now > 60:
            break
        wait_s = limiter.try_acquire(rates)
        if wait_s == 0.0:
            admitted.append(clock.now)
        else:
            assert 0 < wait_s <= 1.0
        next_try[worker] = clock.now + wait_s
    gaps = [b - a for a, b in itertools.pairwise(admitted)]
    assert min(gaps) >= 1.0 - 1e-9  # never faster than 1/s
    assert len(admitted) == 61  # and no capacity lost: one call at every second, 0..60


@pytest.mark.parametrize("name", REDIS_BACKENDS)
def test_threads_on_redis_are_paced_by_the_servers_clock(
    request: pytest.FixtureRequest, name: str
) -> None:
    """Four threads share 20 calls/s; between the first and the last admission of 8, at
    least 7 intervals of 50 ms passed on the server, whatever the threads' timing."""
    client = redis_client_for(request, name)
    limiter = RedisRateLimiter(client)
    rate = Rate(f"test:pace:{time.monotonic_ns()}", per_s=20)
    spans: list[tuple[float, float]] = []  # (sent, returned) of each admitted try
    waits: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if len(spans) >= 8:
                    return
            sent = time.monotonic()
            wait_s = limiter.try_acquire([rate])
            returned = time.monotonic()
            with lock:
                (spans.append((sent, returned)) if wait_s == 0.0 else waits.append(wait_s))
            time.sleep(wait_s)

    threads = [threading.Thread(target=work) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        client.delete(rate.key)
        client.close()
    spans.sort()
    n = len(spans)
    assert n >= 8
    # Admission k happened on the server between its sent and returned instants.
    assert spans[-1][1] - spans[0][0] >= (n - 1) * rate.interval_s
    assert waits
    assert all(0 < w <= rate.interval_s for w in waits)


def test_an_unreachable_redis_is_a_concurrency_error() -> None:
    client = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    with pytest.raises(ConcurrencyError):
        RedisRateLimiter(client).try_acquire([Rate("k", per_s=1)])


def test_rates_are_validated() -> None:
    with pytest.raises(ValueError, match="per_s"):
        Rate("k", per_s=0)
    with pytest.raises(ValueError, match="burst"):
        Rate("k", per_s=1, burst=0)
    with pytest.raises(ValueError, match="caller number"):
        cps_rates("acct", None, caller_cps=1)


def test_gcra_arithmetic() -> None:
    rate = Rate("k", per_s=4, burst=2)  # interval 0.25 s, tolerance 0.25 s
    assert gcra_wait_s(rate, None, 10.0) == 0.0
    tat = gcra_take(rate, None, 10.0)
    assert tat == 10.25
    assert gcra_wait_s(rate, tat, 10.0) == 0.0  # the burst's second call
    tat = gcra_take(rate, tat, 10.0)
    assert gcra_wait_s(rate, tat, 10.0) == pytest.approx(0.25)
    assert gcra_wait_s(rate, tat, 11.0) == 0.0  # idle long enough: the burst is back
