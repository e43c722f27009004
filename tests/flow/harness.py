"""A whole dialer in one test, on a driven clock: no threads, no sleeping.

Dial and dispatch tasks land in lists; :meth:`Harness.step` runs them, lets the simulator
deliver every callback due, advances the clock and ticks the scheduler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dialer.concurrency.keys import SlotScope
from dialer.concurrency.rate.memory import MemoryRateLimiter
from dialer.concurrency.semaphore.memory import MemorySemaphore
from dialer.concurrency.stores import ConcurrencyStores
from dialer.db.engine import session_factory
from dialer.db.models import Campaign
from dialer.policy.campaign_state import CampaignAction, CampaignStatus
from dialer.runtime import Runtime, build_runtime
from dialer.services import campaigns, counters, tenancy
from dialer.services.dialing import DialConfig
from dialer.services.dispatch import DispatchConfig
from dialer.settings import Settings
from dialer.telephony.distributions import Fixed
from dialer.telephony.simulation import OutcomeWeights, SimulationProfile
from dialer.telephony.simulator import SimulatedProvider

EPOCH = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # 12:00 in New York, a Monday


class Clock:
    def __init__(self, start: datetime = EPOCH) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        return (self.now - EPOCH).total_seconds()

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class RecordingQueue:
    """Dial tasks with their due time, and dispatch requests, for the harness to run."""

    clock: Clock
    dials: list[tuple[datetime, int]] = field(default_factory=list)
    dispatches: list[str] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)

    def dial(self, attempt_ids: Sequence[int], countdown_s: float = 0.0) -> None:
        due = self.clock.now + timedelta(seconds=countdown_s)
        for attempt_id in attempt_ids:
            self.dials.append((due, attempt_id))
            self.sent.append(attempt_id)

    def dispatch(self, campaign_id: str) -> None:
        self.dispatches.append(campaign_id)


class _Sink:
    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.delivered: list[tuple[str, str, dict[str, str]]] = []

    def deliver(self, attempt_id: str, kind: Any, params: Any) -> None:
        assert self.runtime is not None
        self.delivered.append((attempt_id, kind, dict(params)))
        self.runtime.dialer.deliver(attempt_id, kind, params)


def profile(**weights: float) -> SimulationProfile:
    """Calls with fixed timings; ``weights`` picks the outcome mix (default: all human)."""
    mix = {"human": 1.0, "voicemail": 0.0, "busy": 0.0, "no_answer": 0.0, "failed": 0.0}
    mix.update(weights)
    return SimulationProfile(
        weights=OutcomeWeights(**mix),
        setup_s=Fixed(1.0),
        ring_s=Fixed(5.0),
        talk_s=Fixed(30.0),
        amd_s=Fixed(2.0),
        greeting_s=Fixed(5.0),
        message_s=Fixed(10.0),
        reject_s=Fixed(2.0),
    )


class Harness:
    def __init__(
        self,
        engine: Engine,
        *,
        sim: SimulationProfile | None = None,
        provider: Any | None = None,
        seed: int = 1,
        cps: float = 100.0,
        refill_here: bool = False,
    ) -> None:
        self.clock = Clock()
        self.queue = RecordingQueue(self.clock)
        self.sink = _Sink()
        self.semaphore = MemorySemaphore(self.clock.seconds)
        self.simulator = provider or SimulatedProvider(
            self.sink, profile=sim or profile(), seed=seed, clock=self.clock
        )
        self.runtime = build_runtime(
            Settings(database_url=str(engine.url)),
            self.queue,
            engine=engine,
            stores=ConcurrencyStores(self.semaphore, MemoryRateLimiter(self.clock.seconds)),
            provider=self.simulator,
            clock=self.clock,
            dispatch=DispatchConfig(round_size=10),
            dialing=DialConfig(account="test", account_cps=cps, time_limit_s=600),
            refill_here=refill_here,
        )
        self.sink.runtime = self.runtime
        self.sessions = session_factory(engine)
        self.peak: dict[str, int] = {}
        self.dial_results: list[str] = []

    # -- setup ---------------------------------------------------------------------------

    def campaign(self, numbers: Sequence[str], user: str = "tenant", **fields: Any) -> str:
        values: dict[str, Any] = {
            "name": "Test",
            "assistant_id": "a",
            "phone_number_id": "pn",
            "caller_id_number": "+14155550100",
            "max_concurrency": 3,
            "retry_policy": {
                "max_attempts": 3,
                "backoff": {"kind": "fixed", "delay": "60s"},
                "jitter": 0,
            },
            "speech_settings": {},
        }
        values.update(fields)
        rows = [_Row(n) for n in numbers]
        with self.sessions() as session, session.begin():
            tenant = tenancy.ensure_tenant(session, user, now=self.clock.now)
            campaign, _ = campaigns.create(
                session, tenant.id, values, now=self.clock.now, recipients=rows
            )
            return campaign.id

    def act(self, campaign_id: str, action: CampaignAction) -> None:
        with self.sessions() as session, session.begin():
            campaign = session.get_one(Campaign, campaign_id)
            campaigns.act(session, campaign.tenant_id, campaign_id, action, now=self.clock.now)

    # -- driving -------------------------------------------------------------------------

    def run_tasks(self) -> None:
        """Run every dial task due now, and every dispatch request."""
        while True:
            due = [d for d in self.queue.dials if d[0] <= self.clock.now]
            if not due and not self.queue.dispatches:
                return
            for item in due:
                self.queue.dials.remove(item)
                self.dial_results.append(self.runtime.dialer.dial(item[1]))
                self._observe()
            while self.queue.dispatches:
                # As the worker's dispatch task does: the first claim is placed at once.
                self.runtime.refill(self.queue.dispatches.pop(0))
                self._observe()

    def step(self, seconds: float = 1.0) -> None:
        self.runtime.dispatcher.tick(self.clock.now)
        self.run_tasks()
        self.clock.advance(seconds)
        self.simulator.run_due(self.clock.now)
        self._observe()
        self.run_tasks()

    def run_until_done(
        self, campaign_id: str, *, max_steps: int = 5_000, seconds: float = 1.0
    ) -> None:
        for _ in range(max_steps):
            self.step(seconds)
            if self.status(campaign_id) is CampaignStatus.COMPLETED:
                return
        raise AssertionError(f"campaign did not complete: {self.counts(campaign_id)}")

    def _observe(self) -> None:
        for key, holders in self.semaphore.snapshot().items():
            self.peak[key] = max(self.peak.get(key, 0), len(holders))

    # -- reading -------------------------------------------------------------------------

    def status(self, campaign_id: str) -> CampaignStatus:
        with self.sessions() as session:
            return session.get_one(Campaign, campaign_id).status

    def counts(self, campaign_id: str) -> dict[str, int]:
        with self.sessions() as session:
            return counters.read(session, [campaign_id])[campaign_id]

    def truth(self, campaign_id: str) -> dict[str, int]:
        with self.sessions() as session:
            return counters.truth(session, campaign_id)

    def peak_of(self, campaign_id: str) -> int:
        with self.sessions() as session:
            tenant_id = session.get_one(Campaign, campaign_id).tenant_id
        key = SlotScope(campaign_id, tenant_id).campaign_key(self.semaphore.prefix)
        return self.peak.get(key, 0)

    def session(self) -> Session:
        return self.sessions()


@dataclass(frozen=True)
class _Row:
    phone_number: str
    metadata: dict[str, Any] = field(default_factory=dict)
    assistant_overrides: dict[str, Any] = field(default_factory=dict)
    time_zone: str | None = "America/New_York"


def numbers(n: int, start: int = 1000) -> list[str]:
    return [f"+1212555{start + i:04d}" for i in range(n)]
