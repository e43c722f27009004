"""The lease semaphore contract, run on every backend: memory, fakeredis and real Redis."""

from __future__ import annotations

import logging
from collections.abc import Set as AbstractSet

import fakeredis
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from dialer.concurrency.keys import SlotScope, layered_limits
from dialer.concurrency.semaphore.base import Limit, Reaped, Truth, reconcile_from
from dialer.concurrency.semaphore.redis import RedisSemaphore
from dialer.errors import ConcurrencyError
from dialer.redaction import mask_phone_numbers
from tests.concurrency.conftest import LONG_LEASE_S, Backend
from tests.concurrency.support import built

SCOPE = SlotScope("camp-1", "tenant-1", "+14155550100")
SISTER = SlotScope("camp-2", "tenant-1", "+14155550100")  # same tenant and number


def limits(
    b: Backend,
    campaign: int = 2,
    tenant: int | None = None,
    caller: int | None = None,
    scope: SlotScope = SCOPE,
) -> tuple[Limit, ...]:
    return layered_limits(scope, campaign, tenant, caller, prefix=b.prefix)


def keys(b: Backend, scope: SlotScope = SCOPE) -> tuple[str, ...]:
    return scope.keys(b.prefix)


def test_admits_up_to_the_limit_then_refuses_naming_the_full_key(backend: Backend) -> None:
    sem = backend.semaphore
    assert sem.acquire("a", limits(backend), LONG_LEASE_S)
    assert sem.acquire("b", limits(backend), LONG_LEASE_S)
    refused = sem.acquire("c", limits(backend), LONG_LEASE_S)
    assert not refused
    assert refused.full == SCOPE.campaign_key(backend.prefix)
    for key in keys(backend):
        assert sem.count(key) == 2
        assert sem.holders(key) == {"a", "b"}


def test_release_frees_a_slot_and_is_idempotent(backend: Backend) -> None:
    sem = backend.semaphore
    sem.acquire("a", limits(backend), LONG_LEASE_S)
    sem.acquire("b", limits(backend), LONG_LEASE_S)
    assert sem.release("a", keys(backend))
    assert not sem.release("a", keys(backend))
    assert not sem.release("never-held", keys(backend))
    assert sem.acquire("c", limits(backend), LONG_LEASE_S)
    assert sem.holders(SCOPE.campaign_key(backend.prefix)) == {"b", "c"}


def test_acquiring_twice_takes_one_slot(backend: Backend) -> None:
    """A task delivered twice (at-least-once delivery) must not hold two slots."""
    sem = backend.semaphore
    assert sem.acquire("a", limits(backend), LONG_LEASE_S)
    assert sem.acquire("a", limits(backend), LONG_LEASE_S)
    assert sem.count(SCOPE.campaign_key(backend.prefix)) == 1
    assert sem.acquire("b", limits(backend), LONG_LEASE_S)
    assert sem.acquire("a", limits(backend), LONG_LEASE_S)  # already in, though now full


def test_renew_keeps_a_live_holder_and_is_idempotent(backend: Backend) -> None:
    sem = backend.semaphore
    assert sem.acquire("a", limits(backend), backend.short_lease_s)
    assert sem.renew("a", keys(backend), LONG_LEASE_S)
    assert sem.renew("a", keys(backend), LONG_LEASE_S)
    backend.lapse()
    assert sem.holders(SCOPE.campaign_key(backend.prefix)) == {"a"}
    assert not sem.renew("someone-else", keys(backend), LONG_LEASE_S)


def test_a_shorter_lease_never_shortens_a_longer_one(backend: Backend) -> None:
    sem = backend.semaphore
    sem.acquire("a", limits(backend), LONG_LEASE_S)
    sem.acquire("a", limits(backend), backend.short_lease_s)
    assert sem.renew("a", keys(backend), backend.short_lease_s)
    backend.lapse()
    assert sem.count(SCOPE.campaign_key(backend.prefix)) == 1


def test_renew_after_expiry_fails_and_the_holder_acquires_again(backend: Backend) -> None:
    sem = backend.semaphore
    sem.acquire("a", limits(backend), backend.short_lease_s)
    backend.lapse()
    assert not sem.renew("a", keys(backend), LONG_LEASE_S)
    assert sem.acquire("a", limits(backend), LONG_LEASE_S)
    # The lapsed lease it replaced is reported, once per key.
    assert sem.reaped_total == len(keys(backend))
    assert sem.renew("a", keys(backend), LONG_LEASE_S)


def test_renew_fails_when_the_holder_lost_any_of_its_keys(backend: Backend) -> None:
    sem = backend.semaphore
    sem.acquire("a", limits(backend), LONG_LEASE_S)
    sem.release("a", [SCOPE.tenant_key(backend.prefix)])
    assert not sem.renew("a", keys(backend), LONG_LEASE_S)


def test_a_stale_holder_cannot_release_another_holders_slot(backend: Backend) -> None:
    sem = backend.semaphore
    assert sem.acquire("stale", limits(backend, campaign=1), backend.short_lease_s)
    backend.lapse()
    assert sem.acquire("fresh", limits(backend, campaign=1), LONG_LEASE_S)
    assert not sem.release("stale", keys(backend))
    assert sem.holders(SCOPE.campaign_key(backend.prefix)) == {"fresh"}
    assert not sem.acquire("third", limits(backend, campaign=1), LONG_LEASE_S)


def test_lowering_the_limit_admits_nothing_until_below_it(backend: Backend) -> None:
    sem = backend.semaphore
    for holder in "abc":
        assert sem.acquire(holder, limits(backend, campaign=3), LONG_LEASE_S)
    assert not sem.acquire("d", limits(backend, campaign=2), LONG_LEASE_S)
    sem.release("a", keys(backend))
    assert not sem.acquire("d", limits(backend, campaign=2), LONG_LEASE_S)  # 2 of 2
    sem.release("b", keys(backend))
    assert sem.acquire("d", limits(backend, campaign=2), LONG_LEASE_S)
    assert sem.count(SCOPE.campaign_key(backend.prefix)) == 2


def test_raising_the_limit_admits_more_at_once(backend: Backend) -> None:
    sem = backend.semaphore
    assert sem.acquire("a", limits(backend, campaign=1), LONG_LEASE_S)
    assert not sem.acquire("b", limits(backend, campaign=1), LONG_LEASE_S)
    assert sem.acquire("b", limits(backend, campaign=3), LONG_LEASE_S)
    assert sem.acquire("c", limits(backend, campaign=3), LONG_LEASE_S)
    assert sem.count(SCOPE.campaign_key(backend.prefix)) == 3


def test_a_full_tenant_takes_nothing_from_the_campaign(backend: Backend) -> None:
    sem = backend.semaphore
    assert sem.acquire("a", limits(backend, campaign=5, tenant=2), LONG_LEASE_S)
    assert sem.acquire("b", limits(backend, campaign=5, tenant=2, scope=SISTER), LONG_LEASE_S)
    refused = sem.acquire("c", limits(backend, campaign=5, tenant=2), LONG_LEASE_S)
    assert not refused
    assert refused.full == SCOPE.tenant_key(backend.prefix)
    assert sem.holders(SCOPE.campaign_key(backend.prefix)) == {"a"}
    assert sem.holders(SCOPE.caller_key(backend.prefix) or "") == {"a", "b"}


def test_a_full_caller_number_takes_nothing_from_campaign_or_tenant(backend: Backend) -> None:
    sem = backend.semaphore
    assert sem.acquire("a", limits(backend, campaign=5, tenant=5, caller=1), LONG_LEASE_S)
    refused = sem.acquire(
        "b", limits(backend, campaign=5, tenant=5, caller=1, scope=SISTER), LONG_LEASE_S
    )
    assert refused.full == SCOPE.caller_key(backend.prefix)
    assert sem.count(SISTER.campaign_key(backend.prefix)) == 0
    assert sem.holders(SCOPE.tenant_key(backend.prefix)) == {"a"}


def test_an_uncapped_layer_still_counts_every_holder(backend: Backend) -> None:
    sem = backend.semaphore
    sem.acquire("a", limits(backend, campaign=1), LONG_LEASE_S)
    sem.acquire("b", limits(backend, campaign=1, scope=SISTER), LONG_LEASE_S)
    assert sem.holders(SCOPE.tenant_key(backend.prefix)) == {"a", "b"}


def test_expired_leases_are_not_counted_and_the_reap_reports_them(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    sem = backend.semaphore
    campaign = SCOPE.campaign_key(backend.prefix)
    sem.acquire("short", limits(backend), backend.short_lease_s)
    sem.acquire("long", limits(backend), LONG_LEASE_S)
    backend.lapse()
    assert sem.count(campaign) == 1  # not counted, though not reaped yet
    assert sem.holders(campaign) == {"long"}
    assert sem.acquire("new", limits(backend), LONG_LEASE_S)  # its slot is free
    assert sem.reaped_total == 0
    with caplog.at_level(logging.WARNING, logger="dialer.concurrency"):
        reaped = sem.reap()
    assert sorted(reaped) == sorted(Reaped(key, "short") for key in keys(backend))
    assert sem.reaped_total == len(keys(backend))
    for key in keys(backend):
        logged = mask_phone_numbers(key)  # a caller's key holds its number
        assert any("short" in m and logged in m for m in caplog.messages)
    assert sem.reap() == []
    assert sem.reaped_total == len(keys(backend))


def test_reap_of_chosen_keys_leaves_the_others(backend: Backend) -> None:
    sem = backend.semaphore
    sem.acquire("short", limits(backend), backend.short_lease_s)
    backend.lapse()
    campaign = SCOPE.campaign_key(backend.prefix)
    assert sem.reap([campaign]) == [Reaped(campaign, "short")]
    assert len(sem.reap()) == len(keys(backend)) - 1


def test_a_release_after_the_lease_lapsed_is_reported(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    sem = backend.semaphore
    sem.acquire("late", limits(backend), backend.short_lease_s)
    backend.lapse()
    with caplog.at_level(logging.WARNING, logger="dialer.concurrency"):
        assert not sem.release("late", keys(backend))
    assert sem.reaped_total == len(keys(backend))
    assert any("late" in m for m in caplog.messages)
    assert sem.reap() == []


def test_snapshot_lists_live_holders_per_key(backend: Backend) -> None:
    sem = backend.semaphore
    sem.acquire("a", limits(backend), LONG_LEASE_S)
    sem.acquire("b", limits(backend, scope=SISTER), LONG_LEASE_S)
    sem.acquire("gone", limits(backend), backend.short_lease_s)
    backend.lapse()
    assert sem.snapshot() == {
        SCOPE.campaign_key(backend.prefix): {"a"},
        SISTER.campaign_key(backend.prefix): {"b"},
        SCOPE.tenant_key(backend.prefix): {"a", "b"},
        SCOPE.caller_key(backend.prefix): {"a", "b"},
    }


def test_acquire_many_decides_in_order_and_release_many_reports_each(backend: Backend) -> None:
    sem = backend.semaphore
    requests = [(holder, limits(backend)) for holder in "abc"]
    assert [bool(a) for a in sem.acquire_many(requests, LONG_LEASE_S)] == [True, True, False]
    assert sem.acquire_many([], LONG_LEASE_S) == []
    released = sem.release_many([("a", keys(backend)), ("c", keys(backend))])
    assert released == [True, False]
    assert sem.holders(SCOPE.campaign_key(backend.prefix)) == {"b"}


def test_reconcile_removes_ended_holders_and_adds_missing_ones_above_the_limit(
    backend: Backend,
) -> None:
    sem = backend.semaphore
    sem.acquire("ghost", limits(backend, campaign=1), LONG_LEASE_S)
    live = {key: {"live-1", "live-2"} for key in keys(backend)}
    truth = Truth(live=live, ended={"ghost"})
    result = sem.reconcile(truth, LONG_LEASE_S)
    assert result.added == {key: frozenset({"live-1", "live-2"}) for key in keys(backend)}
    assert result.removed == {key: frozenset({"ghost"}) for key in keys(backend)}
    assert result.changed
    # What it changed is said by whoever reconciles (tests/flow/test_scheduler_loop.py).
    assert "ghost" in result.summary()
    assert sem.snapshot() == live
    # Above its limit of 1: nothing new is admitted until the real calls drain.
    assert not sem.acquire("next", limits(backend, campaign=1), LONG_LEASE_S)
    assert not sem.reconcile(truth, LONG_LEASE_S).changed


def test_reconcile_empties_keys_whose_attempts_ended(backend: Backend) -> None:
    sem = backend.semaphore
    sem.acquire("a", limits(backend), LONG_LEASE_S)
    result = sem.reconcile(Truth(ended={"a"}), LONG_LEASE_S)
    assert result.removed == {key: frozenset({"a"}) for key in keys(backend)}
    assert sem.snapshot() == {}


def test_reconcile_leaves_holders_the_database_does_not_know_to_their_lease(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """No row (not committed yet, or never): the lease, not reconcile, bounds the slot."""
    sem = backend.semaphore
    sem.acquire("unknown", limits(backend), backend.short_lease_s)
    sem.acquire("ended", limits(backend), LONG_LEASE_S)
    result = sem.reconcile(Truth(ended={"ended"}), LONG_LEASE_S)
    assert result.removed == {key: frozenset({"ended"}) for key in keys(backend)}
    assert sem.snapshot() == {key: {"unknown"} for key in keys(backend)}
    backend.lapse()
    assert sem.snapshot() == {}
    with caplog.at_level(logging.WARNING, logger="dialer.concurrency"):
        assert sorted(sem.reap()) == sorted(Reaped(key, "unknown") for key in keys(backend))
    assert any("unknown" in m and "expired" in m for m in caplog.messages)


def test_reconcile_keeps_the_slot_of_an_attempt_admitted_before_its_row_committed(
    backend: Backend,
) -> None:
    """The dispatcher's race: the count must never go above the limit.

    The dispatcher takes attempt X's slot, then commits X's row. A reconcile that snapshots
    Redis in between and reads the database before the commit sees X held but not in the
    database. Were X removed, its call would go ahead without a slot and another attempt
    would take it; the reconcile after the commit would add X back above the limit.
    """
    sem = backend.semaphore
    campaign = SCOPE.campaign_key(backend.prefix)
    committed = {key: {"c1", "c2"} for key in keys(backend)}
    for holder in ("c1", "c2"):
        assert sem.acquire(holder, limits(backend, campaign=3), LONG_LEASE_S)
    assert sem.acquire("x", limits(backend, campaign=3), LONG_LEASE_S)  # row not committed
    asked: list[AbstractSet[str]] = []

    def before_x_commits(observed: AbstractSet[str]) -> Truth:
        asked.append(observed)
        return Truth(live=committed)  # X's row is not visible: neither live nor ended

    result = reconcile_from(sem, before_x_commits, LONG_LEASE_S)
    assert asked == [{"c1", "c2", "x"}]
    refused = sem.acquire("y", limits(backend, campaign=3), LONG_LEASE_S)
    assert not refused
    assert refused.full == campaign
    assert sem.holders(campaign) == {"c1", "c2", "x"}
    assert not result.changed

    def after_x_commits(observed: AbstractSet[str]) -> Truth:
        return Truth(live={key: {*holders, "x"} for key, holders in committed.items()})

    assert not reconcile_from(sem, after_x_commits, LONG_LEASE_S).changed
    assert sem.count(campaign) == 3
    assert not sem.acquire("y", limits(backend, campaign=3), LONG_LEASE_S)


def test_reconcile_renews_live_attempts_whose_lease_lapsed(backend: Backend) -> None:
    sem = backend.semaphore
    sem.acquire("a", limits(backend), backend.short_lease_s)
    backend.lapse()
    result = sem.reconcile(Truth(live={key: {"a"} for key in keys(backend)}), LONG_LEASE_S)
    assert result.added == {key: frozenset({"a"}) for key in keys(backend)}
    assert sorted(result.reaped) == sorted(Reaped(key, "a") for key in keys(backend))
    backend.lapse()
    assert sem.count(SCOPE.campaign_key(backend.prefix)) == 1


def test_reconcile_leaves_alone_what_changed_after_the_snapshot(backend: Backend) -> None:
    sem = backend.semaphore
    sem.acquire("leaving", limits(backend), LONG_LEASE_S)
    observed = sem.snapshot()
    # While the database was being read, one attempt was admitted and another one ended.
    sem.acquire("arriving", limits(backend), LONG_LEASE_S)
    sem.release("leaving", keys(backend))
    truth = Truth(live={key: {"leaving"} for key in keys(backend)})  # read before it ended
    result = sem.reconcile(truth, LONG_LEASE_S, observed=observed)
    assert not result.changed
    assert sem.holders(SCOPE.campaign_key(backend.prefix)) == {"arriving"}


def test_reconcile_from_reads_the_truth_after_the_snapshot(backend: Backend) -> None:
    sem = backend.semaphore
    sem.acquire("ending", limits(backend), LONG_LEASE_S)

    def read_truth(observed: AbstractSet[str]) -> Truth:
        assert observed == {"ending"}
        sem.acquire("admitted-meanwhile", limits(backend), LONG_LEASE_S)
        # Even said to have ended, a holder the snapshot did not see is not touched.
        return Truth(ended={"ending", "admitted-meanwhile"})

    reconcile_from(sem, read_truth, LONG_LEASE_S)
    assert sem.holders(SCOPE.campaign_key(backend.prefix)) == {"admitted-meanwhile"}


def test_keys_outside_the_prefix_are_refused(backend: Backend) -> None:
    sem = backend.semaphore
    with pytest.raises(ValueError, match="outside"):
        sem.acquire("a", [Limit("elsewhere:campaign:1", 1)], LONG_LEASE_S)
    with pytest.raises(ValueError, match="outside"):
        sem.reconcile(Truth(live={"elsewhere:campaign:1": {"a"}}), LONG_LEASE_S)
    with pytest.raises(ValueError, match="lease"):
        sem.acquire("a", limits(backend), 0)


def test_the_script_cache_flushed_by_a_restart_is_reloaded(redis_backend: Backend) -> None:
    sem, client = redis_backend.semaphore, redis_backend.client
    assert client is not None
    sem.acquire("a", limits(redis_backend), LONG_LEASE_S)
    client.script_flush()
    assert sem.acquire("b", limits(redis_backend), LONG_LEASE_S)
    client.script_flush()
    assert sem.renew("a", keys(redis_backend), LONG_LEASE_S)
    client.script_flush()
    assert sem.release("a", keys(redis_backend))
    client.script_flush()
    assert sem.count(SCOPE.campaign_key(redis_backend.prefix)) == 1
    client.script_flush()
    assert sem.reap() == []
    client.script_flush()
    truth = Truth(live={k: {"b"} for k in keys(redis_backend)})
    assert not sem.reconcile(truth, LONG_LEASE_S).changed


def test_responses_decoded_to_text_work_too() -> None:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    sem = built(RedisSemaphore(client, prefix="p:"))
    scope_limits = layered_limits(SCOPE, 1, None, None, prefix="p:")
    assert sem.acquire("a", scope_limits, LONG_LEASE_S)
    assert sem.snapshot() == {k: {"a"} for k in SCOPE.keys("p:")}
    result = sem.reconcile(Truth(ended={"a"}), LONG_LEASE_S)
    assert result.removed == {k: {"a"} for k in SCOPE.keys("p:")}


def test_an_unreachable_redis_is_a_concurrency_error() -> None:
    client = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    sem = RedisSemaphore(client, prefix="p:")
    with pytest.raises(ConcurrencyError):
        sem.begin_rebuild()
    with pytest.raises(ConcurrencyError):
        sem.acquire("a", [Limit("p:campaign:1", 1)], LONG_LEASE_S)
    with pytest.raises(ConcurrencyError):
        sem.snapshot()
