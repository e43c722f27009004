"""Key naming, layered limits and the reconcile plan: pure code, no store."""

from __future__ import annotations

import pytest

from dialer.concurrency import open_stores
from dialer.concurrency.keys import (
    SEMAPHORE_PREFIX,
    SlotScope,
    attempt_id_of,
    holder_id,
    layered_limits,
)
from dialer.concurrency.rate.memory import MemoryRateLimiter
from dialer.concurrency.semaphore.base import (
    KeyPlan,
    Limit,
    ReconcileResult,
    Truth,
    plan_reconcile,
)
from dialer.concurrency.semaphore.memory import MemorySemaphore
from dialer.settings import Settings

SCOPE = SlotScope("c-1", "t-1", "+14155550100")


def test_a_scope_names_its_campaign_tenant_and_caller_keys() -> None:
    assert SCOPE.keys() == (
        "dialer:sem:campaign:c-1",
        "dialer:sem:tenant:t-1",
        "dialer:sem:caller:t-1:+14155550100",
    )
    assert SlotScope("c-1", "t-1").keys("x:") == ("x:campaign:c-1", "x:tenant:t-1")
    assert holder_id(42) == "42"


def test_layered_limits_follow_the_keys_and_leave_none_uncapped() -> None:
    assert layered_limits(SCOPE, 5, None, 2) == (
        Limit(f"{SEMAPHORE_PREFIX}campaign:c-1", 5),
        Limit(f"{SEMAPHORE_PREFIX}tenant:t-1", None),
        Limit(f"{SEMAPHORE_PREFIX}caller:t-1:+14155550100", 2),
    )
    assert [limit.key for limit in layered_limits(SCOPE, 5, 9, None)] == list(SCOPE.keys())


def test_a_caller_limit_needs_a_caller_number() -> None:
    with pytest.raises(ValueError, match="caller number"):
        layered_limits(SlotScope("c-1", "t-1"), 5, None, 1)


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_holders"):
        Limit("k", -1)


def test_the_reconcile_plan_removes_what_ended_and_adds_what_is_missing() -> None:
    plan = plan_reconcile(
        truth=Truth(
            live={"a": {"1", "2"}, "b": {"3"}, "same": {"4"}, "moved": {"6"}},
            ended={"9", "8", "6"},
        ),
        observed={
            "a": {"2", "9", "7"},
            "c": {"8"},
            "same": {"4"},
            "unknown": {"7"},
            "moved": {"6"},
        },
    )
    # "7" is in no row yet (neither live nor ended): never removed, its key left alone. "6"
    # read both live and ended (it ended between the two reads): kept, as live.
    assert plan == {
        "a": KeyPlan(remove=frozenset({"9"}), add=frozenset({"1"})),
        "b": KeyPlan(remove=frozenset(), add=frozenset({"3"})),
        "c": KeyPlan(remove=frozenset({"8"}), add=frozenset()),
    }


def test_holder_ids_turn_back_into_attempt_ids_and_nothing_else_does() -> None:
    assert attempt_id_of(holder_id(42)) == 42
    assert attempt_id_of(holder_id(2**63 - 1)) == 2**63 - 1
    for stray in ["", "ghost", "-1", "007", "4.2", " 42", "\u0664\u0662", str(2**63)]:
        assert attempt_id_of(stray) is None, stray


def test_without_redis_the_stores_live_in_memory() -> None:
    stores = open_stores(Settings(redis_url=None))
    assert isinstance(stores.slots.semaphore, MemorySemaphore)
    assert isinstance(stores.pacer, MemoryRateLimiter)


def test_the_reconcile_summary_stays_one_short_line() -> None:
    result = ReconcileResult(
        added={"k": frozenset(str(n) for n in range(100, 125))}, removed={"j": frozenset({"7"})}
    )
    assert result.summary(per_key=2) == "k: +['100', '101'] and 23 more; j: -['7']"
    assert ReconcileResult().summary() == "no change"
    assert not ReconcileResult().changed
