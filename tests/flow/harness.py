"""A whole dialer in one test, on a driven clock: no threads, no sleeping.

Dial and dispatch tasks land in lists, the simulator's events in a buffer; :meth:`Harness.step`
runs the tasks, lets the simulator report every event due and takes them in, advances the
clock and ticks the scheduler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dialer.calls import counters
from dialer.calls.config import CallConfig
from dialer.calls.dispatch import DispatchConfig
from dialer.calls.results import DialResult
from dialer.concurrency.stores import ConcurrencyStores
from dialer.db.engine import session_factory
from dialer.db.models import Campaign
from dialer.phone import to_e164
from dialer.policy.campaign_state import CampaignAction, CampaignStatus
from dialer.runtime import Refills, build_runtime
from dialer.services import campaigns, tenancy
from dialer.services.consent import Consent
from dialer.settings import Settings
from dialer.telephony.events import EventKind, ProviderEvent
from dialer.telephony.simulator import SimulatedProvider
from dialer.telephony.simulator.distributions import Fixed
from dialer.telephony.simulator.plan import OutcomeWeights, SimulationProfile
from dialer.telephony.twilio.callbacks import parse_event
from tests.db import factories

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

    def dispatch_started(self, campaign_id: str) -> None:
        pass


@dataclass
class EventBuffer:
    """The simulator's sink: events wait here until the harness takes them in."""

    waiting: list[tuple[str, ProviderEvent]] = field(default_factory=list)
    delivered: list[tuple[str, ProviderEvent]] = field(default_factory=list)

    def deliver(self, attempt_id: str, event: ProviderEvent) -> None:
        self.waiting.append((attempt_id, event))
        self.delivered.append((attempt_id, event))

    def take(self) -> list[tuple[str, ProviderEvent]]:
        taken, self.waiting = self.waiting, []
        return taken


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
        sleep_advances: bool = False,
        stores: ConcurrencyStores | None = None,
        pace_at_claim: bool = True,
        settings: dict[str, Any] | None = None,
    ) -> None:
        """``sleep_advances``: a wait the dial path sleeps moves the clock on; without it the
        clock moves by steps only, and a call that must wait for its pace waits for one.
        ``stores``: the slots and pacer (default: in memory, on the harness's clock).
        ``pace_at_claim``: claims reserve their calls' starts (the default), or leave the pace
        to the dial. ``settings``: settings other than their defaults (health thresholds...)."""
        self.clock = Clock()
        self.queue = RecordingQueue(self.clock)
        self.sink = EventBuffer()
        self.stores = stores or ConcurrencyStores.in_memory(self.clock.seconds)
        self.semaphore = self.stores.slots.semaphore
        self.simulator = provider or SimulatedProvider(
            self.sink, profile=sim or profile(), seed=seed, clock=self.clock
        )
        self.runtime = build_runtime(
            Settings(database_url=str(engine.url), **(settings or {})),
            self.queue,
            self.stores,
            # A worker refills the slots of the calls it sees end in place; elsewhere (the
            # distributed scheduler, the API) a freed slot asks the queue.
            refills=Refills.HERE if refill_here else Refills.QUEUE,
            engine=engine,
            provider=self.simulator,
            clock=self.clock,
            dispatch=DispatchConfig(round_size=10),
            calls=CallConfig(
                account="test", account_cps=cps, time_limit_s=600, pace_at_claim=pace_at_claim
            ),
            sleep=self._sleep,
        )
        self.sessions = session_factory(engine)
        self._callers: dict[str, str] = {}
        self.peak: dict[str, int] = {}
        self.dial_results: list[DialResult] = []
        #: The waits the dial path slept; with ``sleep_advances`` each moves the clock on.
        self.slept: list[float] = []
        self.sleep_advances = sleep_advances

    def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.sleep_advances:
            # At least the clock's resolution: a pace wait can be a rounding error's width.
            self.clock.advance(max(seconds, 1e-6))

    # -- setup ---------------------------------------------------------------------------

    def campaign(self, numbers: Sequence[str], user: str = "tenant", **fields: Any) -> str:
        """A campaign of ``user`` calling ``numbers``; its caller numbers are registered to
        ``user`` (a number each user of its own, unless ``fields`` name one)."""
        caller = self._callers.setdefault(user, f"+1415555{100 + len(self._callers):04d}")
        values: dict[str, Any] = {
            "name": "Test",
            "assistant_id": "a",
            "phone_number_id": caller,
            "caller_id_number": caller,
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
            for name in ("phone_number_id", "caller_id_number"):
                if values.get(name):
                    factories.phone_number(session, tenant.id, to_e164(values[name]))
            campaign, _ = campaigns.create(
                session, tenant.id, values, now=self.clock.now, recipients=rows
            )
            return campaign.id

    def plan_campaign(
        self, plan: Sequence[tuple[str, Sequence[str]]], user: str = "tenant", **fields: Any
    ) -> str:
        """A campaign of ``user`` with a dial plan: each (caller number, recipients it calls);
        the caller numbers are registered to ``user``."""
        values: dict[str, Any] = {
            "name": "Test",
            "assistant_id": "a",
            "max_concurrency": 3,
            "retry_policy": {
                "max_attempts": 3,
                "backoff": {"kind": "fixed", "delay": "60s"},
                "jitter": 0,
            },
            "speech_settings": {},
        }
        values.update(fields)
        with self.sessions() as session, session.begin():
            tenant = tenancy.ensure_tenant(session, user, now=self.clock.now)
            entries = []
            for caller, called in plan:
                factories.phone_number(session, tenant.id, caller)
                rows = [_Row(n) for n in called]
                entries.append(campaigns.DialPlanInput(caller, None, None, rows))
            campaign, _ = campaigns.create(
                session, tenant.id, values, now=self.clock.now, dial_plan=entries
            )
            return campaign.id

    def callback(self, attempt_id: int, kind: EventKind, params: dict[str, str]) -> None:
        """A provider callback, as Twilio posts it, taken in as the webhook would."""
        self.runtime.take_event(attempt_id, parse_event(kind, params))

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
                self.dial_results.append(self.runtime.run_dial(item[1]).result)
                self._observe()
            while self.queue.dispatches:
                # As the worker's dispatch task does: the first claim is placed at once.
                self.runtime.run_dispatch(self.queue.dispatches.pop(0))
                self._observe()

    def deliver_due(self) -> int:
        """Let the simulator report every event due now, taking each in before the next is
        reported (taking one in may change what is due: a hang-up). Returns how many."""
        taken = 0
        while self.simulator.run_due(self.clock.now, most=1):
            for attempt_id, event in self.sink.take():
                self.runtime.take_event(attempt_id, event)
                taken += 1
        return taken

    def step(self, seconds: float = 1.0) -> None:
        self.runtime.dispatcher.tick(self.clock.now)
        self.run_tasks()
        self.clock.advance(seconds)
        self.deliver_due()
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
        return self.peak.get(f"{self.semaphore.prefix}campaign:{campaign_id}", 0)

    def session(self) -> Session:
        return self.sessions()


@dataclass(frozen=True)
class _Row:
    phone_number: str
    metadata: dict[str, Any] = field(default_factory=dict)
    assistant_overrides: dict[str, Any] = field(default_factory=dict)
    time_zone: str | None = "America/New_York"
    consent: Consent | None = None
    region: str | None = None


def numbers(n: int, start: int = 1000) -> list[str]:
    return [f"+1212555{start + i:04d}" for i in range(n)]
