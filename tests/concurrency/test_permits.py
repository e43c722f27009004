"""Starts reserved ahead at the claim: the contract on every backend, the rates they keep,
the fair share, and how rarely a dial that follows its permit is sent back.

The arithmetic runs on the memory pacer with a driven clock; on Redis (time is the server's)
the tests use what happens at one instant, or threads racing to reserve.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from dialer.calls.config import CallConfig
from dialer.calls.gate import StartGate
from dialer.concurrency.keys import permit_key, tenant_pace
from dialer.concurrency.rate.base import Rate
from dialer.concurrency.rate.memory import MemoryRateLimiter
from dialer.concurrency.rate.permits import Ask, PaceState, reserve
from dialer.concurrency.rate.redis import RedisRateLimiter
from dialer.concurrency.semaphore.memory import MemorySemaphore
from dialer.concurrency.slots import CallSlots
from dialer.concurrency.stores import ConcurrencyStores
from tests.concurrency.conftest import REDIS_BACKENDS, ManualClock, Pacer, redis_client_for
from tests.services import delete_prefix, unique_prefix


def asks(n: int, rates: tuple[Rate, ...], prefix: str = "") -> list[Ask]:
    return [Ask(f"{prefix}permit:{i}", rates) for i in range(n)]


# -- the arithmetic, pure ---------------------------------------------------------------------


def test_starts_are_reserved_one_interval_apart_within_the_horizon() -> None:
    rate = Rate("account", per_s=1)
    state = PaceState()
    starts = reserve(state, asks(5, (rate,)), None, now=100.0, ahead_s=2.5)
    assert starts == [100.0, 101.0, 102.0, None, None]
    # The key holds the last start taken, as if those calls had arrived at their instants.
    assert state.tat == {"account": 103.0}


def test_a_burst_is_reserved_at_once_then_paced() -> None:
    rate = Rate("account", per_s=2, burst=3)
    starts = reserve(PaceState(), asks(5, (rate,)), None, now=0.0, ahead_s=1.0)
    assert starts == [0.0, 0.0, 0.0, 0.5, 1.0]


def test_every_rate_of_a_call_spaces_its_reserved_start() -> None:
    account = Rate("account", per_s=10)
    caller = Rate("caller:+1", per_s=1)
    other = Rate("caller:+2", per_s=1)
    ask_list = [
        Ask("p1", (account, caller)),
        Ask("p2", (account, caller)),
        Ask("p3", (account, other)),
    ]
    state = PaceState()
    starts = reserve(state, ask_list, None, now=0.0, ahead_s=0.5)
    # The second call of +1 is a second away (beyond the horizon): nothing taken for it,
    # so the call from +2 gets the account's next instant, 0.1 s on.
    assert starts == [0.0, None, pytest.approx(0.1)]
    assert state.tat["account"] == pytest.approx(0.2)


def test_a_tenant_cap_spaces_reserved_starts_and_leaves_the_account_to_others() -> None:
    """A start its cap puts 2 s away is not reserved now: that would leave the account (10 a
    second) unused until then. Another tenant has the account's next instant; the capped one
    gets its next start from a dispatch once its cap admits it."""
    rates, share = tenant_pace("acct", "capped", account_cps=10, tenant_cps=0.5)
    state = PaceState()
    assert reserve(state, asks(3, rates), share, now=0.0, ahead_s=5.0) == [0.0, None, None]
    other, other_share = tenant_pace("acct", "free", account_cps=10)
    assert reserve(state, asks(2, other, "o"), other_share, now=0.0, ahead_s=0.15) == [
        pytest.approx(0.1),
        None,
    ]
    assert reserve(state, asks(1, rates, "c"), share, now=1.0, ahead_s=0.5) == [None]
    assert reserve(state, asks(1, rates, "c"), share, now=2.0, ahead_s=0.5) == [2.0]


def test_tenants_take_their_shares_of_the_horizon_in_runs() -> None:
    """The busy tenant, alone, reserved the horizon. The small one, refused for now, has the
    run after it at its next dispatch, before the busy one's next run."""
    big_rates, big = tenant_pace("acct", "big", account_cps=4)
    small_rates, small = tenant_pace("acct", "small", account_cps=4)
    state = PaceState()
    assert reserve(state, asks(5, big_rates, "b"), big, now=0.0, ahead_s=1.0) == [
        0.0,
        0.25,
        0.5,
        0.75,
        1.0,
    ]
    assert reserve(state, asks(1, small_rates, "s"), small, now=0.0, ahead_s=0.5) == [None]
    assert reserve(state, asks(3, small_rates, "s"), small, now=0.5, ahead_s=1.0) == [
        1.25,
        1.5,
        None,  # its share: one start every 0.5 s, at most the horizon ahead
    ]
    # The instants after the small one's run are beyond the horizon.
    assert reserve(state, asks(3, big_rates, "b2"), big, now=0.6, ahead_s=1.0) == [None] * 3


@dataclass
class Demand:
    """One tenant's dispatches: every ``every_s`` it asks for ``calls`` starts."""

    calls: int
    every_s: float = 0.5


def simulate_dispatches(
    demands: dict[str, Demand], *, account_cps: float, ahead_s: float, until_s: float
) -> dict[str, list[float]]:
    """Each tenant reserves its demand at its dispatches; the starts given to each."""
    clock = ManualClock(start=0.0)
    limiter = MemoryRateLimiter(clock)
    due = [(0.0, tenant) for tenant in sorted(demands)]
    starts: dict[str, list[float]] = {tenant: [] for tenant in demands}
    serial = itertools.count()
    while due:
        at, tenant = heapq.heappop(due)
        if at > until_s:
            break
        clock.now = at
        rates, share = tenant_pace("acct", tenant, account_cps=account_cps)
        wanted = asks(demands[tenant].calls, rates, f"{tenant}:{next(serial)}:")
        for wait_s in limiter.reserve(wanted, share, ahead_s=ahead_s, late_s=1.0):
            if wait_s is not None:
                starts[tenant].append(at + wait_s)
        heapq.heappush(due, (at + demands[tenant].every_s, tenant))
    return starts


def test_reserving_tenants_share_the_account_and_never_exceed_it() -> None:
    """A tenant reserving 20 starts at each dispatch against one asking for 3: about half
    each, and the account's 8 a second exactly (no two reserved starts closer than 1/8 s)."""
    starts = simulate_dispatches(
        {"big": Demand(20), "small": Demand(3, every_s=0.4)},
        account_cps=8,
        ahead_s=1.0,
        until_s=30,
    )
    every = sorted(starts["big"] + starts["small"])
    assert min(b - a for a, b in itertools.pairwise(every)) >= 1 / 8 - 1e-9
    assert len(every) >= 8 * 30 - 8  # the account is kept busy
    small = len(starts["small"])
    assert small >= 0.4 * len(every), (small, len(every))


def test_a_tenant_alone_reserves_the_whole_account() -> None:
    starts = simulate_dispatches({"only": Demand(50)}, account_cps=20, ahead_s=1.0, until_s=10)
    assert len(starts["only"]) >= 20 * 10
    assert min(b - a for a, b in itertools.pairwise(sorted(starts["only"]))) >= 1 / 20 - 1e-9


# -- the contract, on every backend ----------------------------------------------------------


def test_a_permit_is_used_once_when_due(pacer: Pacer) -> None:
    rates = (Rate(f"{pacer.prefix}account:a", per_s=0.2),)  # 5 s apart
    wanted = asks(2, rates, pacer.prefix)
    waits = pacer.limiter.reserve(wanted, ahead_s=10.0, late_s=1.0)
    assert waits[0] == 0.0
    assert waits[1] == pytest.approx(5.0, abs=0.1)
    assert pacer.limiter.redeem(wanted[0].permit_key) == 0.0
    assert pacer.limiter.redeem(wanted[0].permit_key) is None  # used
    early = pacer.limiter.redeem(wanted[1].permit_key)
    assert early is not None
    assert 4.5 < early <= 5.0
    assert pacer.limiter.redeem("no-such-permit") is None


def test_reserved_starts_are_taken_from_the_rate(pacer: Pacer) -> None:
    rates = (Rate(f"{pacer.prefix}account:a", per_s=0.5),)
    assert pacer.limiter.reserve(asks(1, rates, pacer.prefix), ahead_s=1.0, late_s=1.0) == [0.0]
    # The start is taken: a try at the same instant waits for the next one.
    assert 1.5 < pacer.limiter.try_acquire(rates) <= 2.0
    assert pacer.limiter.reserve(asks(1, rates, pacer.prefix + "b"), ahead_s=1.0, late_s=1.0) == [
        None
    ]


def test_a_permit_lapses_late_s_after_its_instant() -> None:
    clock = ManualClock()
    limiter = MemoryRateLimiter(clock)
    rates = (Rate("account", per_s=1),)
    wanted = asks(2, rates)
    assert limiter.reserve(wanted, ahead_s=2.0, late_s=0.5) == [0.0, 1.0]
    clock.advance(1.5)  # the second is due since 0.5 s: still good
    assert limiter.redeem(wanted[1].permit_key) == 0.0
    clock.advance(1.0)  # the first is 2.5 s late
    assert limiter.redeem(wanted[0].permit_key) is None


@pytest.mark.parametrize("name", REDIS_BACKENDS)
def test_redis_keeps_permits_and_sharing_state_bounded(
    request: pytest.FixtureRequest, name: str
) -> None:
    client = redis_client_for(request, name)
    prefix = unique_prefix("permits")
    try:
        limiter = RedisRateLimiter(client)
        rates, share = tenant_pace("acct", "t", account_cps=2, prefix=prefix)
        wanted = asks(3, rates, prefix)
        assert limiter.reserve(wanted, share, ahead_s=1.0, late_s=0.25) == [
            0.0,
            pytest.approx(0.5, abs=0.05),
            pytest.approx(1.0, abs=0.05),
        ]
        ttls_ms = [int(client.pttl(ask.permit_key)) for ask in wanted]  # type: ignore[arg-type]
        assert all(0 < ttl <= 1_300 for ttl in ttls_ms), ttls_ms
        for key in (rates[0].key, share.share_key, share.active_key):
            assert 0 < int(client.pttl(key)) <= 2_100  # type: ignore[arg-type]
    finally:
        delete_prefix(client, prefix)
        client.close()


@pytest.mark.parametrize("name", REDIS_BACKENDS)
def test_racing_reservations_on_redis_never_share_an_instant(
    request: pytest.FixtureRequest, name: str
) -> None:
    """Eight threads reserve at once (each its own claim): every start given is its own, a
    full interval from every other, as the rate requires."""
    client = redis_client_for(request, name)
    prefix = unique_prefix("permits")
    limiter = RedisRateLimiter(client)
    rates, share = tenant_pace("acct", "t", account_cps=50, prefix=prefix)
    barrier = threading.Barrier(8)
    given: list[float] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        barrier.wait()
        waits = limiter.reserve(asks(10, rates, f"{prefix}{n}:"), share, ahead_s=0.5, late_s=1.0)
        with lock:
            given.extend(w for w in waits if w is not None)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        instants = sorted(
            float(client.get(key))  # type: ignore[arg-type]
            for key in client.scan_iter(match=f"{prefix}*permit:*")
        )
    finally:
        delete_prefix(client, prefix)
        client.close()
    assert len(instants) == len(given) >= 20  # half a second at 50/s, and more as time runs
    assert min(b - a for a, b in itertools.pairwise(instants)) >= 1 / 50 - 1e-6


# -- the gate: dial tasks following their permits ---------------------------------------------


@dataclass(frozen=True)
class Call:
    recipient_id: int
    tenant_id: str = "t"
    from_: str | None = "+14155550100"
    tenant_cps: float | None = None


def dial_simulation(
    *,
    cps: float,
    calls: int,
    slots: int,
    call_s: float,
    late: Callable[[random.Random], float],
    tick_s: float = 0.5,
    seed: int = 7,
) -> tuple[list[float], int]:
    """Claims and dials on a driven clock, as the dialer does them: a dispatch at every tick
    and at every call's end claims the free slots the pace can fill within its horizon,
    each dial task runs ``late(rng)`` seconds after its countdown and asks the gate; a task
    the gate sends back runs again after the wait (and its lateness). Returns the starts
    and how many times a task was sent back."""
    clock = ManualClock(start=0.0)
    rng = random.Random(seed)
    stores = ConcurrencyStores(CallSlots(MemorySemaphore(clock)), MemoryRateLimiter(clock))
    gate = StartGate(stores, CallConfig(account="acct", account_cps=cps), clock.advance)
    events: list[tuple[float, int, str, int]] = []  # (at, order, kind, recipient)
    order = itertools.count()
    due = deque(range(calls))  # recipients not claimed yet, in order
    in_flight = 0
    starts: list[float] = []
    sent_back = 0

    def dispatch() -> None:
        nonlocal in_flight
        ids = [due.popleft() for _ in range(min(slots - in_flight, len(due)))]
        waits = gate.reserve([Call(i) for i in ids])
        for recipient, wait_s in zip(ids, waits, strict=True):
            if wait_s is None:  # not claimed: stays due, first in line
                due.appendleft(recipient)
                continue
            in_flight += 1
            at = clock.now + wait_s + late(rng)
            heapq.heappush(events, (at, next(order), "dial", recipient))

    heapq.heappush(events, (0.0, next(order), "tick", 0))
    while events and len(starts) < calls:
        at, _, kind, recipient = heapq.heappop(events)
        clock.now = max(clock.now, at)
        if kind == "tick":
            dispatch()
            heapq.heappush(events, (clock.now + tick_s, next(order), "tick", 0))
        elif kind == "dial":
            wait_s = gate.pace(Call(recipient))
            if wait_s > 0:
                sent_back += 1
                heapq.heappush(
                    events, (clock.now + wait_s + late(rng), next(order), "dial", recipient)
                )
            else:
                starts.append(clock.now)
                heapq.heappush(events, (clock.now + call_s, next(order), "end", recipient))
        else:
            in_flight -= 1
            dispatch()
    return starts, sent_back


def test_dials_following_their_permits_are_rarely_sent_back_and_keep_the_rate() -> None:
    """20 calls/s, 50 slots, 2 s calls, every task 0 to 40 ms late: fewer than one dial in
    ten is sent back (taking the pace at the dial sent most back several times), and the
    starts keep the rate: never more in a second than it admits in a second and the late
    allowance."""
    starts, sent_back = dial_simulation(
        cps=20, calls=600, slots=50, call_s=2.0, late=lambda rng: rng.uniform(0.0, 0.04)
    )
    assert len(starts) == 600
    assert sent_back / len(starts) < 0.1, sent_back
    starts.sort()
    # The makespan is the pace's: 600 starts at 20/s take 30 s.
    assert starts[-1] - starts[0] <= 30 * 1.05
    for i, first in enumerate(starts):
        in_window = sum(1 for t in starts[i:] if t < first + 1.0)
        assert in_window <= 20 + 1 + 20 * 0.04 + 1


def test_at_one_call_a_second_a_dial_waits_once() -> None:
    starts, sent_back = dial_simulation(
        cps=1, calls=60, slots=20, call_s=5.0, late=lambda rng: rng.uniform(0.0, 0.05)
    )
    assert len(starts) == 60
    assert sent_back <= 6
    starts.sort()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 1.0 - 0.05  # a late start is never closer than its lateness
    assert starts[-1] - starts[0] <= 59 * 1.05


def test_a_dial_whose_permit_lapsed_is_sent_back_once_with_a_new_one() -> None:
    clock = ManualClock(start=0.0)
    stores = ConcurrencyStores(CallSlots(MemorySemaphore(clock)), MemoryRateLimiter(clock))
    gate = StartGate(stores, CallConfig(account="acct", account_cps=1), lambda s: None)
    assert gate.reserve([Call(1), Call(2), Call(3)]) == [0.0, 1.0, None]
    clock.now = 5.0  # call 2's task comes 4 s late: its permit lapsed
    assert gate.pace(Call(2)) == 0.0  # the rate is free: taken now, as an unreserved call
    assert gate.pace(Call(3)) == pytest.approx(1.0)  # must wait: reserves its instant...
    assert stores.pacer.redeem(permit_key("acct", 3)) == pytest.approx(1.0)
    clock.now = 6.0
    assert gate.pace(Call(3)) == 0.0  # ...and finds it when it comes back


def test_one_reservation_is_for_one_tenant() -> None:
    clock = ManualClock()
    stores = ConcurrencyStores(CallSlots(MemorySemaphore(clock)), MemoryRateLimiter(clock))
    gate = StartGate(stores, CallConfig(account="acct"), lambda s: None)
    with pytest.raises(ValueError, match="one tenant"):
        gate.reserve([Call(1, "a"), Call(2, "b")])
