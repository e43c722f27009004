"""The carrier's own count of what the dialer did to it: the ground truth for load tests.

A call is live from the moment it is created until it ends, queued time included, because
that is how long it holds a concurrency slot at the dialer. Peaks are the most calls live at
once, per caller (``From``) and per campaign. Thread-safe: the server's event loop writes,
tests may read from another thread.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LiveKey:
    caller: str
    campaign: str


class CarrierStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total_calls = 0
        self._live_total = 0
        self._peak_total = 0
        self._live_by_caller: Counter[str] = Counter()
        self._live_by_campaign: Counter[str] = Counter()
        self._peak_by_caller: Counter[str] = Counter()
        self._peak_by_campaign: Counter[str] = Counter()
        self._calls_by_to: Counter[str] = Counter()
        self._ended_by_status: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._webhooks: Counter[str] = Counter()

    def call_created(self, key: LiveKey, to: str) -> None:
        with self._lock:
            self._total_calls += 1
            self._calls_by_to[to] += 1
            self._live_total += 1
            self._peak_total = max(self._peak_total, self._live_total)
            self._live_by_caller[key.caller] += 1
            self._live_by_campaign[key.campaign] += 1
            self._peak_by_caller[key.caller] = max(
                self._peak_by_caller[key.caller], self._live_by_caller[key.caller]
            )
            self._peak_by_campaign[key.campaign] = max(
                self._peak_by_campaign[key.campaign], self._live_by_campaign[key.campaign]
            )

    def call_ended(self, key: LiveKey, status: str) -> None:
        with self._lock:
            self._live_total -= 1
            self._live_by_caller[key.caller] -= 1
            self._live_by_campaign[key.campaign] -= 1
            self._ended_by_status[status] += 1

    def fault(self, name: str) -> None:
        with self._lock:
            self._faults[name] += 1

    def webhook(self, outcome: str) -> None:
        """Count a webhook (status, AMD or answer URL) by ``outcome``: delivered or failed."""
        with self._lock:
            self._webhooks[outcome] += 1

    def snapshot(self) -> dict[str, Any]:
        """Everything counted, as JSON-ready dicts (zero counts left out of ``live``)."""
        with self._lock:
            return {
                "total_calls": self._total_calls,
                "live": {
                    "total": self._live_total,
                    "by_caller": _positive(self._live_by_caller),
                    "by_campaign": _positive(self._live_by_campaign),
                },
                "peak": {
                    "total": self._peak_total,
                    "by_caller": dict(self._peak_by_caller),
                    "by_campaign": dict(self._peak_by_campaign),
                },
                "calls_by_to": dict(self._calls_by_to),
                "ended_by_status": dict(self._ended_by_status),
                "faults": dict(self._faults),
                "webhooks": dict(self._webhooks),
            }


def _positive(counts: Counter[str]) -> dict[str, int]:
    return {key: count for key, count in counts.items() if count > 0}
