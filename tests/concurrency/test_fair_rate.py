"""Sharing the account's calls per second between tenants.

The arithmetic runs on the memory pacer with a driven clock: workers that each sleep exactly
the wait they are given, simulated for tens of seconds. The same rule on every backend is
checked at one instant (Redis time is the server's), and on Redis over a fraction of a
second with threads following their waits.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, cast

import pytest

from dialer.concurrency.keys import tenant_pace
from dialer.concurrency.rate.base import Rate
from dialer.concurrency.rate.fair import (
    ACTIVE_WINDOW_S,
    OWED_GRACE_S,
    TenantShare,
    Verdict,
    decide,
    share_interval_s,
)
from dialer.concurrency.rate.memory import MemoryRateLimiter
from dialer.concurrency.rate.redis import RedisRateLimiter
from tests.concurrency.conftest import REDIS_BACKENDS, ManualClock, Pacer, redis_client_for
from tests.services import delete_prefix, unique_prefix

ACCOUNT = "acct"


def pace(
    tenant: str, *, account_cps: float, tenant_cps: float | None = None, prefix: str = ""
) -> tuple[tuple[Rate, ...], TenantShare]:
    return tenant_pace(
        ACCOUNT, tenant, account_cps=account_cps, tenant_cps=tenant_cps, prefix=prefix
    )


@dataclass
class Load:
    """One tenant's demand: ``workers`` dial tasks, each starting its next call ``gap_s``
    after its last one started, from ``start_s`` until ``stop_s`` (simulated seconds)."""

    workers: int
    gap_s: float = 0.0
    cap: float | None = None
    start_s: float = 0.0
    stop_s: float = float("inf")


def simulate(
    loads: dict[str, Load], *, account_cps: float, until_s: float
) -> dict[str, list[float]]:
    """Each tenant's call starts (simulated seconds), every worker following its waits."""
    clock = ManualClock(start=0.0)
    limiter = MemoryRateLimiter(clock)
    next_try = {
        (tenant, w): load.start_s for tenant, load in loads.items() for w in range(load.workers)
    }
    started: dict[str, list[float]] = {tenant: [] for tenant in loads}
    while next_try:
        worker = min(next_try, key=lambda k: (next_try[k], k))
        tenant = worker[0]
        clock.now = next_try[worker]
        if clock.now > until_s:
            break
        load = loads[tenant]
        if clock.now >= load.stop_s:
            del next_try[worker]
            continue
        rates, share = pace(tenant, account_cps=account_cps, tenant_cps=load.cap)
        wait_s = limiter.try_acquire(rates, share)
        if wait_s == 0.0:
            started[tenant].append(clock.now)
            next_try[worker] = clock.now + load.gap_s
        else:
            assert wait_s > 0
            next_try[worker] = clock.now + wait_s
    return started


def between(starts: list[float], since: float, until: float) -> int:
    return sum(since <= t < until for t in starts)


# Rates whose intervals are exact in binary (8/s: 0.125 s), so no rounding moves an instant.
ACCOUNT_INTERVAL_S = 1 / 8


def test_two_busy_tenants_each_get_half_of_the_account() -> None:
    """Ten workers of one tenant against one worker of another: half each, not 10 to 1."""
    started = simulate({"big": Load(10), "small": Load(1)}, account_cps=8, until_s=60)
    assert abs(len(started["big"]) - 240) <= 2
    assert abs(len(started["small"]) - 240) <= 2
    every = sorted(started["big"] + started["small"])
    assert len(every) == 481  # one every 0.125 s, 0 to 60: no capacity lost
    assert min(b - a for a, b in itertools.pairwise(every)) >= 0.125  # never over 8/s


def test_three_tenants_each_get_a_third() -> None:
    started = simulate({"a": Load(8), "b": Load(1), "c": Load(3)}, account_cps=4, until_s=30)
    for tenant in "abc":
        assert abs(len(started[tenant]) - 40) <= 2, (tenant, len(started[tenant]))


def test_a_tenant_alone_gets_the_whole_account() -> None:
    started = simulate({"only": Load(5)}, account_cps=8, until_s=30)
    assert len(started["only"]) == 241


def test_the_share_of_a_tenant_that_stops_goes_to_the_other() -> None:
    started = simulate({"big": Load(10), "small": Load(2, stop_s=20)}, account_cps=8, until_s=40)
    assert abs(between(started["small"], 0, 20) - 80) <= 2
    assert abs(between(started["big"], 0, 20) - 80) <= 2
    # Once the last owed mark of the tenant that left lapsed (a grace after it was due back),
    # the other has the whole account.
    assert 20 + ACCOUNT_INTERVAL_S + OWED_GRACE_S < 21
    assert between(started["big"], 21, 40) == 19 * 8


def test_a_tenant_that_joins_gets_its_share_at_once() -> None:
    started = simulate({"big": Load(10), "late": Load(1, start_s=10)}, account_cps=8, until_s=20)
    assert between(started["big"], 0, 10) == 80
    assert started["late"][0] - 10 <= share_interval_s(8, 2)
    assert abs(between(started["late"], 10, 20) - 40) <= 2


def test_a_light_tenant_is_served_and_lends_the_rest() -> None:
    """A tenant wanting one call a second gets every one of them promptly, and the busy
    tenant gets everything else: capacity idle in a share is lent, not held back."""
    started = simulate({"busy": Load(10), "light": Load(1, gap_s=1.0)}, account_cps=8, until_s=30)
    light = started["light"]
    # Each of its calls starts within a share interval of when it asked.
    assert max(b - a for a, b in itertools.pairwise(light)) <= 1.0 + share_interval_s(8, 2)
    assert len(light) >= 30 / (1.0 + share_interval_s(8, 2)) - 1
    assert len(started["busy"]) + len(light) == 241  # nothing of the account left unused


def test_a_capped_tenant_never_exceeds_its_cap_and_the_rest_is_lent() -> None:
    started = simulate({"capped": Load(10, cap=2.0), "other": Load(10)}, account_cps=8, until_s=30)
    capped = started["capped"]
    assert min(b - a for a, b in itertools.pairwise(capped)) >= 0.5
    assert len(capped) >= 59  # its cap, 2/s, nearly all of it
    assert len(capped) + len(started["other"]) == 241


def test_a_cap_above_the_share_does_not_lift_the_share() -> None:
    started = simulate({"capped": Load(10, cap=6.0), "other": Load(10)}, account_cps=8, until_s=30)
    assert abs(len(started["capped"]) - 120) <= 2
    assert abs(len(started["other"]) - 120) <= 2


def test_sharing_state_is_forgotten_once_every_tenant_is_idle() -> None:
    clock = ManualClock(start=0.0)
    limiter = MemoryRateLimiter(clock)
    for tenant in ("a", "b", "c"):
        assert limiter.try_acquire(*pace(tenant, account_cps=1)) == 0.0
        clock.advance(1.0)
    clock.advance(ACTIVE_WINDOW_S + OWED_GRACE_S)
    rates, share = pace("d", account_cps=1)
    assert limiter.try_acquire(rates, share) == 0.0
    # Only the last try's keys are left: the idle tenants' shares and marks are gone.
    assert set(limiter._tat) == {rates[0].key, share.share_key}
    assert set(limiter._active[share.active_key]) == {"d"}
    assert share.owed_key not in limiter._owed


# -- the rule as values ------------------------------------------------------------------


# At 10.0, with a share interval of 0.5 s; were the call taken, the account is free at 10.1.
@pytest.mark.parametrize(
    ("case", "verdict"),
    [
        # entitled (share idle or due), account free: taken, share advanced, owed cleared
        ({"share_tat": None}, Verdict(0.0, share_tat=10.5, clear_owed=True)),
        ({"share_tat": 9.0}, Verdict(0.0, share_tat=10.5, clear_owed=True)),
        # entitled, account busy: owed from when it comes back
        ({"account_wait_s": 0.2}, Verdict(0.2, owed_due=10.2)),
        # past its share, nobody owed: borrowed, share untouched
        ({"share_tat": 10.3}, Verdict(0.0)),
        # past its share, account busy: owed only if its share admits it when it is back
        ({"share_tat": 10.3, "account_wait_s": 0.2}, Verdict(0.2)),
        ({"share_tat": 10.1, "account_wait_s": 0.2}, Verdict(0.2, owed_due=10.2)),
        # another tenant due before the account would be free again: back at its due
        ({"share_tat": 10.3, "owed_dues": [10.05, 10.5]}, Verdict(0.05)),
        # another tenant due once the account is free again anyway: borrowed
        ({"share_tat": 10.3, "owed_dues": [10.2]}, Verdict(0.0)),
        # another tenant late (due passed, within the grace): back at its share, owed then
        ({"share_tat": 10.3, "owed_dues": [9.9]}, Verdict(0.3, owed_due=10.3)),
        # its own cap or number refuses: owed from then only if its share admits it then
        ({"own_wait_s": 0.4}, Verdict(0.4, owed_due=10.4)),
        ({"own_wait_s": 0.4, "share_tat": 10.6}, Verdict(0.4)),
        ({"own_wait_s": 0.4, "account_wait_s": 0.6}, Verdict(0.6, owed_due=10.6)),
    ],
)
def test_the_rule(case: dict[str, Any], verdict: Verdict) -> None:
    args: dict[str, Any] = {
        "account_wait_s": 0.0,
        "own_wait_s": 0.0,
        "share_tat": None,
        "owed_dues": [],
        **case,
    }
    got = decide(10.0, interval_s=0.5, account_free_s=10.1, **args)
    assert got.wait_s == pytest.approx(verdict.wait_s)
    assert got.share_tat == verdict.share_tat
    assert got.owed_due == (None if verdict.owed_due is None else pytest.approx(verdict.owed_due))
    assert got.clear_owed == verdict.clear_owed


def test_an_owed_tenant_holds_borrowers_back_until_it_comes() -> None:
    clock = ManualClock(start=0.0)
    limiter = MemoryRateLimiter(clock)
    a, b = pace("a", account_cps=8), pace("b", account_cps=8)  # every 0.125 s
    assert limiter.try_acquire(*a) == 0.0  # a alone: its share is the whole account
    assert limiter.try_acquire(*b) == 0.125  # b entitled, the account busy: b is owed
    clock.now = 0.125
    assert limiter.try_acquire(*a) == 0.0  # a entitled again: it may take b's instant
    clock.now = 0.25
    assert limiter.try_acquire(*a) == 0.125  # a past its share (0.25 s now), b owed
    assert limiter.try_acquire(*b) == 0.0  # b comes back and gets the start
    clock.now = 0.375
    assert limiter.try_acquire(*a) == 0.0  # a's share again
    clock.now = 0.5
    assert limiter.try_acquire(*a) == 0.0  # past its share, nobody owed: a borrows


def test_an_owed_mark_lapses_when_its_tenant_never_comes_back() -> None:
    clock = ManualClock(start=0.0)
    limiter = MemoryRateLimiter(clock)
    a, b = pace("a", account_cps=2.5), pace("b", account_cps=2.5)  # every 0.4 s
    assert limiter.try_acquire(*b) == 0.0
    assert limiter.try_acquire(*a) == pytest.approx(0.4)  # owed until 0.4 + grace
    clock.now = 0.4
    assert limiter.try_acquire(*b) == 0.0  # b entitled: takes a's instant; next share 1.2
    clock.now = 0.8
    assert limiter.try_acquire(*b) == pytest.approx(0.1)  # past its share, a still owed
    clock.now = 0.4 + OWED_GRACE_S
    assert limiter.try_acquire(*b) == 0.0  # a never came back: b borrows


# -- the contract on every backend -------------------------------------------------------


def test_a_tenant_alone_takes_the_accounts_whole_burst(pacer: Pacer) -> None:
    rates, share = pace("a", account_cps=0.1, prefix=pacer.prefix)  # a call every 10 s
    burst = (Rate(rates[0].key, per_s=0.1, burst=3),)
    assert [pacer.limiter.try_acquire(burst, share) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert 9 < pacer.limiter.try_acquire(burst, share) <= 10


def test_an_entitled_tenant_is_refused_only_by_the_account(pacer: Pacer) -> None:
    a = pace("a", account_cps=0.1, prefix=pacer.prefix)
    b = pace("b", account_cps=0.1, prefix=pacer.prefix)
    assert pacer.limiter.try_acquire(*a) == 0.0
    assert 9 < pacer.limiter.try_acquire(*b) <= 10  # the account's wait
    assert 9 < pacer.limiter.try_acquire(*a) <= 10  # a past its share, and the account busy


def test_a_tenant_cap_refuses_and_burns_no_account_capacity(pacer: Pacer) -> None:
    def capped(tenant: str) -> tuple[tuple[Rate, ...], TenantShare]:
        rates, share = pace(tenant, account_cps=1, tenant_cps=0.1, prefix=pacer.prefix)
        return (Rate(rates[0].key, per_s=1, burst=10), *rates[1:]), share

    assert pacer.limiter.try_acquire(*capped("a")) == 0.0
    assert 9 < pacer.limiter.try_acquire(*capped("a")) <= 10  # its cap: 1 call / 10 s
    assert pacer.limiter.try_acquire(*capped("b")) == 0.0  # another tenant's own cap
    rates, share = pace("a", account_cps=1, prefix=pacer.prefix)
    # Without its cap, "a" borrows the account's burst the refusal left untouched.
    assert pacer.limiter.try_acquire((Rate(rates[0].key, per_s=1, burst=10),), share) == 0.0


def test_tenants_of_other_accounts_do_not_share(pacer: Pacer) -> None:
    a = tenant_pace("one", "a", account_cps=0.1, prefix=pacer.prefix)
    b = tenant_pace("two", "b", account_cps=0.1, prefix=pacer.prefix)
    assert pacer.limiter.try_acquire(*a) == 0.0
    assert pacer.limiter.try_acquire(*b) == 0.0


def test_a_share_must_name_one_of_the_rates(pacer: Pacer) -> None:
    _, share = pace("a", account_cps=1, prefix=pacer.prefix)
    with pytest.raises(ValueError, match="shared account key"):
        pacer.limiter.try_acquire((Rate(f"{pacer.prefix}other", per_s=1),), share)


@pytest.mark.parametrize("name", REDIS_BACKENDS)
def test_redis_keeps_its_sharing_state_bounded(request: pytest.FixtureRequest, name: str) -> None:
    client = redis_client_for(request, name)
    prefix = unique_prefix("fair")
    try:
        limiter = RedisRateLimiter(client)
        a = pace("a", account_cps=0.1, prefix=prefix)
        b = pace("b", account_cps=0.1, prefix=prefix)
        assert limiter.try_acquire(*a) == 0.0
        assert limiter.try_acquire(*b) > 0
        share = b[1]
        assert client.zcard(share.active_key) == 2
        assert client.zscore(share.owed_key, "b") is not None
        # Every key of the sharing state expires on its own.
        ttls_ms = {
            key: cast(int, client.pttl(key))
            for key in (share.active_key, share.owed_key, a[1].share_key, a[0][0].key)
        }
        assert all(0 < ttl_ms <= 11_000 for ttl_ms in ttls_ms.values()), ttls_ms
        assert ttls_ms[share.active_key] <= ACTIVE_WINDOW_S * 1000 + 1
    finally:
        delete_prefix(client, prefix)
        client.close()


@pytest.mark.parametrize("name", REDIS_BACKENDS)
def test_threads_of_two_tenants_on_redis_share_the_account(
    request: pytest.FixtureRequest, name: str
) -> None:
    """Six threads of one tenant and one of another share 40 calls/s on the server's clock:
    first come, first served would give the lone thread about a seventh."""
    client = redis_client_for(request, name)
    prefix = unique_prefix("fair")
    limiter = RedisRateLimiter(client)
    started: Counter[str] = Counter()
    lock = threading.Lock()
    total = 40

    def work(tenant: str) -> None:
        rates, share = pace(tenant, account_cps=40, prefix=prefix)
        while True:
            with lock:
                if started.total() >= total:
                    return
            wait_s = limiter.try_acquire(rates, share)
            if wait_s == 0.0:
                with lock:
                    started[tenant] += 1
            time.sleep(wait_s)

    threads = [threading.Thread(target=work, args=("big",)) for _ in range(6)]
    threads.append(threading.Thread(target=work, args=("small",)))
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        delete_prefix(client, prefix)
        client.close()
    assert started.total() >= total
    assert started["small"] >= 0.35 * started.total(), started
    assert started["big"] >= 0.35 * started.total(), started
