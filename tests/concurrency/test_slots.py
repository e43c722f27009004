"""Call slots: scopes in, keys under the semaphore's own prefix, on every backend."""

from __future__ import annotations

from collections.abc import Set as AbstractSet

from dialer.concurrency.keys import SlotLimits, SlotScope
from dialer.concurrency.slots import CallSlots, SlotClaim
from dialer.concurrency.truth import SlotTruth
from tests.concurrency.conftest import Backend

SCOPE = SlotScope("campaign-1", "tenant-1", "+14155550100")
LONG_S = 3600.0


def _claim(attempt_id: int, campaign: int = 2, tenant: int | None = None) -> SlotClaim:
    return SlotClaim(attempt_id, SCOPE, SlotLimits(campaign, tenant, caller=None))


def test_every_key_is_built_under_the_semaphores_own_prefix(backend: Backend) -> None:
    slots = CallSlots(backend.semaphore)  # the backend's prefix is not the default one
    assert all(slots.acquire_many([_claim(1), _claim(2)], LONG_S))
    snapshot = backend.semaphore.snapshot()
    assert snapshot
    assert all(key.startswith(backend.prefix) for key in snapshot)
    assert {key.removeprefix(backend.prefix) for key in snapshot} == {
        "campaign:campaign-1",
        "tenant:tenant-1",
        "caller:tenant-1:+14155550100",
    }
    assert slots.in_use("campaign-1") == 2
    assert slots.holders("campaign-1") == {1, 2}


def test_a_lapsed_slot_is_taken_again_under_its_limits_whatever_the_prefix(
    backend: Backend,
) -> None:
    """A dial whose queue lease lapsed takes its slot again: with a non-default prefix that
    used to fail, the limits being built under the default one."""
    slots = CallSlots(backend.semaphore)
    assert all(slots.acquire_many([_claim(1, campaign=1)], backend.short_lease_s))
    backend.lapse()

    assert slots.hold(_claim(1, campaign=1), LONG_S), "taken again, all layers"
    assert slots.holders("campaign-1") == {1}
    assert not slots.hold(_claim(2, campaign=1), LONG_S), "and the limit still holds"


def test_release_is_idempotent_and_frees_every_layer(backend: Backend) -> None:
    slots = CallSlots(backend.semaphore)
    slots.acquire_many([_claim(7)], LONG_S)
    assert slots.release(7, SCOPE)
    assert not slots.release(7, SCOPE)
    assert backend.semaphore.snapshot() == {}


def test_reconcile_reads_the_truth_of_the_attempts_it_observed(backend: Backend) -> None:
    slots = CallSlots(backend.semaphore)
    slots.acquire_many([_claim(1), _claim(2)], LONG_S)
    backend.semaphore.acquire("ghost", [], LONG_S)  # a holder that names no attempt
    asked: list[AbstractSet[int]] = []

    def truth(observed: AbstractSet[int]) -> SlotTruth:
        asked.append(observed)
        return SlotTruth(live={3: SCOPE}, ended={2})

    result = slots.reconcile(truth, LONG_S)

    assert asked == [{1, 2}], "only attempt ids are looked up"
    assert slots.holders("campaign-1") == {1, 3}
    assert result.changed
