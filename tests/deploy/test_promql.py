"""The PromQL reader the other deployment tests rely on finds what it should."""

from __future__ import annotations

import pytest

from tests.deploy.promql import problems, series_in


@pytest.mark.parametrize(
    ("expr", "series"),
    [
        ("sum(rate(dialer_dials_total[5m]))", {"dialer_dials_total"}),
        (
            'max by (tenant, campaign) (dialer_campaign_calls_in_flight{campaign=~"$c"})'
            " > on (tenant, campaign) dialer_campaign_slots_limit",
            {"dialer_campaign_calls_in_flight", "dialer_campaign_slots_limit"},
        ),
        (
            "histogram_quantile(0.99, sum by (le) (rate(dialer_dial_latency_seconds_bucket"
            "[$__rate_interval])))",
            {"dialer_dial_latency_seconds_bucket"},
        ),
        ('absent(up{role="worker"} == 1)', {"up"}),
        ("max by (queue) (delta(dialer_queue_depth[10m:1m])) > 0", {"dialer_queue_depth"}),
    ],
)
def test_series_are_found(expr: str, series: set[str]) -> None:
    assert series_in(expr) == series
    assert problems(expr) == []


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("rate(dialer_dial_latncy_seconds_bucket[5m])", "unknown series"),
        ("sum(rate(dialer_queue_depth[5m]))", "not a counter"),
        ("delta(dialer_dials_total[5m])", "not a gauge"),
        ("histogram_quantile(0.9, rate(dialer_dials_total[5m]))", "no _bucket"),
        ('sum by (phone) (dialer_campaign_recipients{state="done"})', "unknown label phone"),
        ("sum(rate(dialer_dials_total[5m])", "unbalanced"),
        ("vector(1)", "selects no series"),
        ("process_resident_memory_bytes", "unknown series"),
    ],
)
def test_mistakes_are_reported(expr: str, problem: str) -> None:
    assert any(problem in found for found in problems(expr)), problems(expr)
