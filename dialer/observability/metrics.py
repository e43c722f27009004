"""The metric families every dialer process records, and the recorders the call path calls.

The families are the ones the dashboards and alert rules use (``deploy/`` and the README list
them); their names, types and labels are a contract. Labels are bounded sets (results,
outcomes, reasons, kinds): never a phone number, and a campaign id only on the per-campaign
gauges, which are read at scrape time (:mod:`~dialer.observability.campaigns`).

The families live in prometheus-client's process-wide registry, as the library is built to
be used: a process has one set of counters, whatever number of runtimes it builds (tests
build many). Each recorder is a counter increment or a histogram observation: no I/O, so it
costs the call path microseconds. With ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus-client
keeps the values in files of that directory, and an exporter adds up the processes'
(:mod:`~dialer.observability.exposition`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import Counter, Gauge, Histogram

from dialer.calls.results import DialResult, ReapVerdict
from dialer.concurrency.semaphore.base import ReconcileResult
from dialer.policy.attempt_state import Outcome
from dialer.policy.campaign_state import PausedReason
from dialer.policy.health import NumberProblem

#: Roles a process reports in ``dialer_build_info``.
ROLES = ("api", "worker", "scheduler")

DIALS = Counter(
    "dialer_dials_total", "Dials (dial tasks and calls a refill placed), by result.", ["result"]
)
CALL_OUTCOMES = Counter(
    "dialer_call_outcomes_total", "Attempts that ended, by outcome.", ["outcome"]
)
RETRIES_SCHEDULED = Counter(
    "dialer_retries_scheduled_total",
    "Recipients due again after an attempt, by the outcome of that attempt.",
    ["outcome"],
)
DIAL_LATENCY = Histogram(
    "dialer_dial_latency_seconds",
    "From an attempt's claim to the provider accepting its call.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
CALLBACKS_RECEIVED = Counter(
    "dialer_callbacks_received_total", "Provider callbacks taken in, by kind.", ["kind"]
)
CALLBACKS_REJECTED = Counter(
    "dialer_callbacks_rejected_total", "Provider callbacks turned away, by reason.", ["reason"]
)
CALLBACK_SECONDS = Histogram(
    "dialer_callback_seconds",
    "Time to handle one provider callback.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
SCHEDULER_TICK_SECONDS = Histogram(
    "dialer_scheduler_tick_seconds",
    "Duration of one scheduler tick (reconcile and sweep when due, outbox, dispatch).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
SCHEDULER_DISPATCHED = Counter(
    "dialer_scheduler_dispatched_total", "Recipients the scheduler's ticks dispatched."
)
RECONCILE_REPAIRS = Counter(
    "dialer_reconcile_repairs_total",
    "Repairs of the slots and counters by the reconcile or a rebuild, by kind.",
    ["kind"],
)
REAPER_ACTIONS = Counter(
    "dialer_reaper_actions_total", "Stuck attempts the reaper looked up, by verdict.", ["action"]
)
SWEEP_ACTIONS = Counter(
    "dialer_sweep_actions_total", "What the provider sweep did, by action.", ["action"]
)
PACER_WAITS = Counter(
    "dialer_pacer_waits_total",
    "Call starts the calls-per-second pacer told to wait, by where they waited.",
    ["scope"],
)
PACER_WAIT_SECONDS = Histogram(
    "dialer_pacer_wait_seconds",
    "How long the calls-per-second pacer told a call start to wait.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
HEALTH_ACTIONS = Counter(
    "dialer_health_actions_total",
    "Campaigns that paused themselves and caller numbers quarantined, by reason.",
    ["reason"],
)
BUILD_INFO = Gauge(
    "dialer_build_info",
    "1, labelled with the dialer's version and the role of the process.",
    ["version", "role"],
    # Several processes of one role share a directory in multiprocess mode: one series per
    # role, of the processes still alive (see mark_process_dead in the README).
    multiprocess_mode="livemax",
)

# -- label values ---------------------------------------------------------------------------

#: Repairs (``kind``): holders a reconcile removed from (an ended call's slot freed) or added
#: to (a placed call's slot restored) the semaphore, leases reaped, rebuilds of a store that
#: lost its data, and counters a recount corrected.
SLOT_FREED = "slot_freed"
SLOT_RESTORED = "slot_restored"
LEASE_REAPED = "lease_reaped"
SLOTS_REBUILT = "slots_rebuilt"
COUNTER_DRIFT = "counter_drift"
#: Sweep actions: calls fetched because the provider no longer lists them, the attempts
#: their records ended, and lookups (the list, or a call) that failed.
SWEEP_FETCHED = "fetched"
SWEEP_ENDED = "ended"
SWEEP_FAILED = "failed"
#: Pacer waits (``scope``): short enough to be waited out in the thread that asked, or sent
#: back (the dial task comes back after the wait; a refill's claim goes to the queue).
PACED_IN_PLACE = "in_place"
PACED_REQUEUED = "requeued"
#: ... or given its start ahead with its claim (its dial task sent with that countdown).
PACED_AT_CLAIM = "at_claim"
#: Rejected callbacks (``reason``).
BAD_SIGNATURE = "bad_signature"
MALFORMED = "malformed"
UNKNOWN_CALL = "unknown_call"
TOO_LARGE = "too_large"

#: Every series of a bounded label set exists from the start, at 0: a rate over a counter
#: that appears only at its first increment misses that increment.
_SERIES: tuple[tuple[Counter, tuple[str, ...]], ...] = (
    (DIALS, tuple(r.value for r in DialResult)),
    (CALL_OUTCOMES, tuple(o.value for o in Outcome)),
    (RETRIES_SCHEDULED, tuple(o.value for o in Outcome)),
    (CALLBACKS_RECEIVED, ("status", "amd", "stream")),
    (HEALTH_ACTIONS, tuple(r.value for r in PausedReason) + tuple(p.value for p in NumberProblem)),
    (CALLBACKS_REJECTED, (BAD_SIGNATURE, MALFORMED, UNKNOWN_CALL, TOO_LARGE)),
    (RECONCILE_REPAIRS, (SLOT_FREED, SLOT_RESTORED, LEASE_REAPED, SLOTS_REBUILT, COUNTER_DRIFT)),
    (REAPER_ACTIONS, tuple(v.value for v in ReapVerdict)),
    (SWEEP_ACTIONS, (SWEEP_FETCHED, SWEEP_ENDED, SWEEP_FAILED)),
    (PACER_WAITS, (PACED_AT_CLAIM, PACED_IN_PLACE, PACED_REQUEUED)),
)
for _counter, _values in _SERIES:
    for _value in _values:
        _counter.labels(_value)


def dialer_version() -> str:
    try:
        return version("dialer")
    except PackageNotFoundError:  # pragma: no cover - run from a tree that is not installed
        return "unknown"


def set_role(role: str) -> None:
    """Report this process's role in ``dialer_build_info``."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    BUILD_INFO.labels(dialer_version(), role).set(1)


# -- recorders: one call at the point where the thing happens --------------------------------


def dialed(result: DialResult) -> None:
    DIALS.labels(result.value).inc()


def provider_accepted(seconds_since_claim: float) -> None:
    DIAL_LATENCY.observe(seconds_since_claim)


def call_ended(outcome: Outcome, *, retry: bool) -> None:
    """An attempt's end committed; ``retry``: its recipient is due again because of it."""
    CALL_OUTCOMES.labels(outcome.value).inc()
    if retry:
        RETRIES_SCHEDULED.labels(outcome.value).inc()


def paced(wait_s: float, in_place_s: float) -> None:
    """The pacer's answer to a call start: a wait (> 0) is counted, as waited out in place
    when it is at most ``in_place_s``; 0.0 (go now) is not."""
    if wait_s > 0:
        PACER_WAITS.labels(PACED_IN_PLACE if wait_s <= in_place_s else PACED_REQUEUED).inc()
        PACER_WAIT_SECONDS.observe(wait_s)


def reserved(waits: Sequence[float | None]) -> None:
    """Starts reserved with their claims: each later than now is a pace wait, waited out as
    its dial task's countdown."""
    for wait_s in waits:
        if wait_s:
            PACER_WAITS.labels(PACED_AT_CLAIM).inc()
            PACER_WAIT_SECONDS.observe(wait_s)


def scheduler_ticked(seconds: float, dispatched: int) -> None:
    SCHEDULER_TICK_SECONDS.observe(seconds)
    if dispatched:
        SCHEDULER_DISPATCHED.inc(dispatched)


def repaired(kind: str, n: int = 1) -> None:
    if n:
        RECONCILE_REPAIRS.labels(kind).inc(n)


def reaped(verdict: str) -> None:
    REAPER_ACTIONS.labels(verdict).inc()


def swept(action: str, n: int = 1) -> None:
    if n:
        SWEEP_ACTIONS.labels(action).inc(n)


# -- callbacks -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Callback:
    kind: str
    rejected: bool = False


_callback: ContextVar[_Callback | None] = ContextVar("dialer_callback", default=None)


@contextlib.contextmanager
def callback(kind: str) -> Iterator[None]:
    """Handling one provider callback of ``kind``: timed, and counted as received when the
    block ends without an exception unless something underneath rejected it
    (:func:`callback_rejected`, which reaches it through the context: the thread pool that
    runs the database work copies it)."""
    started = time.perf_counter()
    handling = _Callback(kind)
    token = _callback.set(handling)
    try:
        yield
    finally:
        _callback.reset(token)
        CALLBACK_SECONDS.observe(time.perf_counter() - started)
    if not handling.rejected:
        CALLBACKS_RECEIVED.labels(kind).inc()


def health_action(reason: str) -> None:
    """A campaign paused itself, or a caller number was quarantined (``reason``: the paused
    or quarantine reason, a bounded set)."""
    HEALTH_ACTIONS.labels(reason).inc()


def callback_rejected(reason: str) -> None:
    """A provider callback turned away (a bad signature, a malformed form, an unknown call, a
    body too large); the callback being handled, if any, is not counted as received."""
    handling = _callback.get()
    if handling is not None:
        handling.rejected = True
    CALLBACKS_REJECTED.labels(reason).inc()


def slots_reconciled(result: ReconcileResult) -> None:
    """A reconcile repaired the semaphore: the calls whose slots it freed or restored (each
    once, whatever number of keys, campaign, tenant, caller, it held), and leases it reaped."""
    repaired(SLOT_FREED, len(frozenset().union(*result.removed.values())))
    repaired(SLOT_RESTORED, len(frozenset().union(*result.added.values())))
    repaired(LEASE_REAPED, len(result.reaped))
