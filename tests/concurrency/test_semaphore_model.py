"""Random sequences of operations against a simple model, on memory and on fakeredis.

The clock is an integer number of seconds the machine drives (fakeredis reads it through a
patched ``TIME``), so leases expire exactly at the step the model says, edges included.
Checked after every step: the live holders of every key, and the reaped-lease total. Checked
at every acquire, independently of the model: no capped key holds more than the limit passed
to that acquire (only reconcile may push a key above it), and that reconcile removes only
holders the truth says have ended.
"""

from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

import fakeredis
from fakeredis.commands_mixins import server_mixin
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from dialer.concurrency.keys import SlotScope, layered_limits
from dialer.concurrency.semaphore.base import Admission, LeaseSemaphore, Limit, Reaped, Truth
from dialer.concurrency.semaphore.memory import MemorySemaphore
from dialer.concurrency.semaphore.redis import RedisSemaphore
from tests.concurrency.conftest import ManualClock
from tests.concurrency.support import built

PREFIX = "model:"
HOLDERS = [f"h{i}" for i in range(6)]
CAMPAIGNS = ["c0", "c1"]
CALLERS = ["+10", "+11", "+12"]
leases = st.integers(min_value=1, max_value=5)
holders = st.sampled_from(HOLDERS)


def scope_of(holder: str) -> SlotScope:
    i = int(holder[1:])
    return SlotScope(CAMPAIGNS[i % 2], "t", CALLERS[i % 3])


ALL_KEYS = sorted({key for h in HOLDERS for key in scope_of(h).keys(PREFIX)})


class Model:
    """The store as the contract describes it: every lease, lapsed ones until removed."""

    def __init__(self) -> None:
        self.now = 1_000_000
        self.entries: dict[str, dict[str, int]] = {}
        self.reported = 0

    def live(self, key: str) -> set[str]:
        return {h for h, expiry in self.entries.get(key, {}).items() if expiry > self.now}

    def acquire(self, holder: str, limits: tuple[Limit, ...], lease: int) -> Admission:
        for limit in limits:
            held = self.entries.get(limit.key, {})
            if limit.max_holders is None or held.get(holder, self.now) > self.now:
                continue
            if len(self.live(limit.key)) >= limit.max_holders:
                return Admission(False, limit.key)
        for limit in limits:
            held = self.entries.setdefault(limit.key, {})
            previous = held.get(holder)
            if previous is not None and previous <= self.now:
                self.reported += 1
                previous = None
            held[holder] = max(previous or 0, self.now + lease)
        return Admission(True)

    def renew(self, holder: str, keys: tuple[str, ...], lease: int) -> bool:
        expiries = [self.entries.get(key, {}).get(holder) for key in keys]
        if any(e is None or e <= self.now for e in expiries):
            return False
        for key in keys:
            self.entries[key][holder] = max(self.entries[key][holder], self.now + lease)
        return True

    def release(self, holder: str, keys: tuple[str, ...]) -> bool:
        live = False
        for key in keys:
            expiry = self.entries.get(key, {}).pop(holder, None)
            if expiry is None:
                continue
            if expiry > self.now:
                live = True
            else:
                self.reported += 1
        return live

    def reap(self, keys: list[str]) -> set[Reaped]:
        reaped = set()
        for key in keys:
            held = self.entries.get(key, {})
            for holder in [h for h, expiry in held.items() if expiry <= self.now]:
                del held[holder]
                reaped.add(Reaped(key, holder))
        self.reported += len(reaped)
        return reaped

    def reconcile(
        self, truth: dict[str, set[str]], ended: set[str], lease: int
    ) -> tuple[dict[str, set[str]], dict[str, set[str]], set[Reaped]]:
        """Removes observed holders that ended (and are not live there); adds missing ones.

        Keys with nothing to remove or add are not touched (their expired leases stay).
        """
        observed = {key: self.live(key) for key in self.entries}

        def to_remove(key: str) -> set[str]:
            return (observed.get(key, set()) & ended) - truth.get(key, set())

        def to_add(key: str) -> set[str]:
            return truth.get(key, set()) - observed.get(key, set())

        plan_keys = [key for key in set(truth) | set(observed) if to_remove(key) or to_add(key)]
        reaped = self.reap(plan_keys)
        added: dict[str, set[str]] = {}
        removed: dict[str, set[str]] = {}
        for key in plan_keys:
            want, seen = truth.get(key, set()), observed.get(key, set())
            held = self.entries.setdefault(key, {})
            for holder in to_remove(key):
                if held.pop(holder, None) is not None:
                    removed.setdefault(key, set()).add(holder)
            for holder in want - seen:
                if holder not in held:
                    held[holder] = self.now + lease
                    added.setdefault(key, set()).add(holder)
        return added, removed, reaped


class SemaphoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.clock = ManualClock(self.model.now)
        self.sem = self.make_semaphore()
        self.campaign_caps = dict.fromkeys(CAMPAIGNS, 2)
        self.tenant_cap: int | None = None
        self.caller_caps: dict[str, int | None] = dict.fromkeys(CALLERS)

    def make_semaphore(self) -> LeaseSemaphore:
        raise NotImplementedError

    def limits_for(self, holder: str) -> tuple[Limit, ...]:
        scope = scope_of(holder)
        return layered_limits(
            scope,
            self.campaign_caps[scope.campaign_id],
            self.tenant_cap,
            self.caller_caps[scope.caller_number or ""],
            prefix=PREFIX,
        )

    @rule(holder=holders, lease=leases)
    def acquire(self, holder: str, lease: int) -> None:
        limits = self.limits_for(holder)
        already = {limit.key for limit in limits if holder in self.model.live(limit.key)}
        admission = self.sem.acquire(holder, limits, lease)
        assert admission == self.model.acquire(holder, limits, lease)
        if admission:
            for limit in limits:
                if limit.max_holders is not None and limit.key not in already:
                    assert self.sem.count(limit.key) <= limit.max_holders

    @rule(holder=holders, lease=leases)
    def renew(self, holder: str, lease: int) -> None:
        keys = scope_of(holder).keys(PREFIX)
        assert self.sem.renew(holder, keys, lease) == self.model.renew(holder, keys, lease)

    @rule(holder=holders)
    def release(self, holder: str) -> None:
        keys = scope_of(holder).keys(PREFIX)
        assert self.sem.release(holder, keys) == self.model.release(holder, keys)

    @rule(seconds=st.integers(min_value=0, max_value=3))
    def advance(self, seconds: int) -> None:
        self.model.now += seconds
        self.clock.now = self.model.now

    @rule(campaign=st.sampled_from(CAMPAIGNS), cap=st.integers(min_value=0, max_value=3))
    def set_campaign_limit(self, campaign: str, cap: int) -> None:
        self.campaign_caps[campaign] = cap

    @rule(cap=st.none() | st.integers(min_value=0, max_value=4))
    def set_tenant_limit(self, cap: int | None) -> None:
        self.tenant_cap = cap

    @rule(caller=st.sampled_from(CALLERS), cap=st.none() | st.integers(min_value=0, max_value=2))
    def set_caller_limit(self, caller: str, cap: int | None) -> None:
        self.caller_caps[caller] = cap

    @rule()
    def reap(self) -> None:
        assert set(self.sem.reap()) == self.model.reap(list(self.model.entries))

    @rule(live=st.sets(holders), ended=st.sets(holders), lease=leases)
    def reconcile(self, live: set[str], ended: set[str], lease: int) -> None:
        """The database knows each holder as live, as ended, or not at all (no row yet)."""
        ended = ended - live
        truth: dict[str, set[str]] = {}
        for holder in live:
            for key in scope_of(holder).keys(PREFIX):
                truth.setdefault(key, set()).add(holder)
        result = self.sem.reconcile(Truth(live=truth, ended=ended), lease)
        added, removed, reaped = self.model.reconcile(truth, ended, lease)
        assert result.added == added
        assert result.removed == removed
        assert set(result.reaped) == reaped
        assert all(holders <= ended for holders in result.removed.values())

    @invariant()
    def holders_match_the_model(self) -> None:
        for key in ALL_KEYS:
            assert self.sem.holders(key) == self.model.live(key), key
        assert self.sem.reaped_total == self.model.reported


class MemoryMachine(SemaphoreMachine):
    def make_semaphore(self) -> LeaseSemaphore:
        return MemorySemaphore(self.clock, prefix=PREFIX)


class FakeRedisMachine(SemaphoreMachine):
    """fakeredis answers ``TIME`` from ``time.time()`` in its server mixin: point it here."""

    def make_semaphore(self) -> LeaseSemaphore:
        self._patch = mock.patch.object(server_mixin, "time", SimpleNamespace(time=self.clock))
        self._patch.start()
        client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        return built(RedisSemaphore(client, prefix=PREFIX))

    def teardown(self) -> None:
        self._patch.stop()


TestMemorySemaphoreModel = MemoryMachine.TestCase
TestMemorySemaphoreModel.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
TestFakeRedisSemaphoreModel = FakeRedisMachine.TestCase
TestFakeRedisSemaphoreModel.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
