"""The metric families: registered with the contract's types and labels, and recorded where
the call path's events happen."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from dialer.calls.results import DialResult
from dialer.concurrency.semaphore.base import Reaped, ReconcileResult
from dialer.observability import metrics
from dialer.observability.exposition import Scrape
from dialer.policy.attempt_state import Outcome
from tests.observability.scrape import CONTRACT, SCRAPE_TIME, Scraped


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_every_family_of_the_contract_has_its_type_and_labels() -> None:
    metrics.set_role("worker")
    scraped = Scraped(Scrape().text().decode())
    for name, (kind, labels) in CONTRACT.items():
        if name in SCRAPE_TIME:
            continue
        assert scraped.types.get(name) == kind, name
        if labels:
            assert scraped.label_names(name) == set(labels), name
    assert scraped.value("dialer_build_info", version=metrics.dialer_version(), role="worker") == 1


def test_results_outcomes_and_reasons_are_there_from_the_start() -> None:
    scraped = Scraped(Scrape().text().decode())
    results = {s.labels["result"] for s in scraped.samples if s.name == "dialer_dials_total"}
    assert results >= {r.value for r in DialResult}
    outcomes = {
        s.labels["outcome"] for s in scraped.samples if s.name == "dialer_call_outcomes_total"
    }
    assert outcomes >= {o.value for o in Outcome}
    reasons = {
        s.labels["reason"] for s in scraped.samples if s.name == "dialer_callbacks_rejected_total"
    }
    assert reasons >= {"bad_signature", "malformed", "unknown_call", "too_large"}


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="role"):
        metrics.set_role("web")


def test_an_end_counts_its_outcome_and_its_retry() -> None:
    before = sample("dialer_call_outcomes_total", outcome="busy")
    retries = sample("dialer_retries_scheduled_total", outcome="busy")
    metrics.call_ended(Outcome.BUSY, retry=True)
    metrics.call_ended(Outcome.BUSY, retry=False)
    assert sample("dialer_call_outcomes_total", outcome="busy") == before + 2
    assert sample("dialer_retries_scheduled_total", outcome="busy") == retries + 1


def test_pacer_waits_count_by_where_they_are_waited_and_a_go_is_not_a_wait() -> None:
    in_place = sample("dialer_pacer_waits_total", scope="in_place")
    requeued = sample("dialer_pacer_waits_total", scope="requeued")
    observed = sample("dialer_pacer_wait_seconds_count")
    metrics.paced(0.0, in_place_s=0.05)
    metrics.paced(0.02, in_place_s=0.05)
    metrics.paced(0.5, in_place_s=0.05)
    assert sample("dialer_pacer_waits_total", scope="in_place") == in_place + 1
    assert sample("dialer_pacer_waits_total", scope="requeued") == requeued + 1
    assert sample("dialer_pacer_wait_seconds_count") == observed + 2


def test_starts_reserved_later_with_their_claims_count_as_waits_at_the_claim() -> None:
    at_claim = sample("dialer_pacer_waits_total", scope="at_claim")
    observed = sample("dialer_pacer_wait_seconds_count")
    metrics.reserved([0.0, 0.25, None, 0.5])  # now, later, not reserved, later
    assert sample("dialer_pacer_waits_total", scope="at_claim") == at_claim + 2
    assert sample("dialer_pacer_wait_seconds_count") == observed + 2


def test_a_callback_is_received_unless_rejected_underneath_and_always_timed() -> None:
    received = sample("dialer_callbacks_received_total", kind="status")
    unknown = sample("dialer_callbacks_rejected_total", reason="unknown_call")
    timed = sample("dialer_callback_seconds_count")
    with metrics.callback("status"):
        pass
    with metrics.callback("status"):
        metrics.callback_rejected(metrics.UNKNOWN_CALL)
    with pytest.raises(RuntimeError), metrics.callback("status"):
        raise RuntimeError
    assert sample("dialer_callbacks_received_total", kind="status") == received + 1
    assert sample("dialer_callbacks_rejected_total", reason="unknown_call") == unknown + 1
    assert sample("dialer_callback_seconds_count") == timed + 3


def test_a_reconcile_counts_each_call_once_whatever_its_keys() -> None:
    freed = sample("dialer_reconcile_repairs_total", kind="slot_freed")
    restored = sample("dialer_reconcile_repairs_total", kind="slot_restored")
    reaped = sample("dialer_reconcile_repairs_total", kind="lease_reaped")
    result = ReconcileResult(
        added={"c": frozenset({"a3"})},
        removed={"c": frozenset({"a1", "a2"}), "t": frozenset({"a1", "a2"})},
        reaped=(Reaped("c", "a9"),),
    )
    metrics.slots_reconciled(result)
    assert sample("dialer_reconcile_repairs_total", kind="slot_freed") == freed + 2
    assert sample("dialer_reconcile_repairs_total", kind="slot_restored") == restored + 1
    assert sample("dialer_reconcile_repairs_total", kind="lease_reaped") == reaped + 1
