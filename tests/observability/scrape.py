"""Reading a scrape: Prometheus' text format, parsed by prometheus-client's own parser."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

#: The families the dashboards and alerts use: name -> (type, label names). Counters are
#: named here as the parser names them (without ``_total``).
CONTRACT: dict[str, tuple[str, frozenset[str]]] = {
    "dialer_campaign_calls_in_flight": ("gauge", frozenset({"campaign", "tenant"})),
    "dialer_campaign_slots_in_use": ("gauge", frozenset({"campaign", "tenant"})),
    "dialer_campaign_slots_limit": ("gauge", frozenset({"campaign", "tenant"})),
    "dialer_campaign_recipients": ("gauge", frozenset({"campaign", "tenant", "state"})),
    "dialer_dials": ("counter", frozenset({"result"})),
    "dialer_call_outcomes": ("counter", frozenset({"outcome"})),
    "dialer_retries_scheduled": ("counter", frozenset({"outcome"})),
    "dialer_dial_latency_seconds": ("histogram", frozenset()),
    "dialer_callbacks_received": ("counter", frozenset({"kind"})),
    "dialer_callbacks_rejected": ("counter", frozenset({"reason"})),
    "dialer_callback_seconds": ("histogram", frozenset()),
    "dialer_scheduler_tick_seconds": ("histogram", frozenset()),
    "dialer_scheduler_dispatched": ("counter", frozenset()),
    "dialer_reconcile_repairs": ("counter", frozenset({"kind"})),
    "dialer_reaper_actions": ("counter", frozenset({"action"})),
    "dialer_sweep_actions": ("counter", frozenset({"action"})),
    "dialer_pacer_waits": ("counter", frozenset({"scope"})),
    "dialer_pacer_wait_seconds": ("histogram", frozenset()),
    "dialer_health_actions": ("counter", frozenset({"reason"})),
    "dialer_queue_depth": ("gauge", frozenset({"queue"})),
    "dialer_build_info": ("gauge", frozenset({"version", "role"})),
}
#: Read at scrape time, only where the process serves them (the API, an embedded scheduler).
SCRAPE_TIME = {
    "dialer_campaign_calls_in_flight",
    "dialer_campaign_slots_in_use",
    "dialer_campaign_slots_limit",
    "dialer_campaign_recipients",
    "dialer_queue_depth",
}


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


class Scraped:
    """One scrape's families, by name, with their samples."""

    def __init__(self, text: str) -> None:
        self.types: dict[str, str] = {}
        self.samples: list[Sample] = []
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            self.samples.extend(Sample(s.name, dict(s.labels), s.value) for s in family.samples)

    def values(self, name: str, **labels: str) -> list[float]:
        return [
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        """The one sample of ``name`` with ``labels`` (0.0 when absent: a counter not yet
        incremented)."""
        found = self.values(name, **labels)
        assert len(found) <= 1, (name, labels, found)
        return found[0] if found else 0.0

    def total(self, name: str, **labels: str) -> float:
        return sum(self.values(name, **labels))

    def label_names(self, family: str) -> set[str]:
        """The label names of the family's samples (histograms' ``le`` left out)."""
        names: set[str] = set()
        for sample in self.samples:
            if sample.name == family or sample.name.startswith(family + "_"):
                names |= set(sample.labels) - {"le"}
        return names
