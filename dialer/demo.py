"""The embedded demo: a whole campaign, dialed end to end on the embedded defaults.

SQLite, the in-memory semaphore and pacer, the simulator (sped up) and the in-process task
queue: the same services the distributed deployment runs, in one process. It creates a
campaign through the same service calls the API makes, starts it, runs the scheduler until
the campaign completes, and prints its progress, the peak of calls in flight, and where every
recipient ended and why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dialer.api.schemas.recipients import RecipientIn
from dialer.clock import utc_now
from dialer.concurrency.keys import SlotScope
from dialer.db.migrate import upgrade
from dialer.db.models import Campaign, Recipient
from dialer.inprocess import InProcessQueue, bind_runtime
from dialer.policy.campaign_state import CampaignAction, CampaignStatus
from dialer.runtime import build_runtime
from dialer.services import campaigns, counters, suppression, tenancy
from dialer.services.dispatch import DispatchConfig
from dialer.settings import Settings
from dialer.telephony.distributions import Uniform
from dialer.telephony.simulation import SimulationProfile
from dialer.telephony.simulator import SimulatedProvider
from scheduler.loop import SchedulerLoop

DEMO_USER = "demo"
#: Zones tried for the demo's recipients; those inside legal hours right now are used.
ZONES = (
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Honolulu",
)
SUPPRESSED = "+13035550199"
MAX_CONCURRENCY = 5
RETRY = {"max_attempts": 3, "backoff": {"kind": "fixed", "delay": "2s"}, "jitter": 0.0}


@dataclass(frozen=True)
class DemoResult:
    campaign_id: str
    status: str
    ended_reason: str | None
    counts: dict[str, int]
    peak_in_flight: int


def _callable_zone(now: datetime) -> str:
    for name in ZONES:
        if 9 <= now.astimezone(ZoneInfo(name)).hour < 20:
            return name
    return ZONES[0]


def _recipients(zone: str, n: int) -> list[RecipientIn]:
    rows = [
        RecipientIn(
            phone_number=f"+1212555{1000 + i:04d}",
            metadata={"first_name": f"Guest {i}"},
            time_zone=zone,
        )
        for i in range(n)
    ]
    # No time zone is known for a satellite number: skipped, with that reason.
    rows.append(RecipientIn(phone_number="+870 301 234 567", metadata={"first_name": "Sat"}))
    rows.append(
        RecipientIn(phone_number=SUPPRESSED, metadata={"first_name": "Dee"}, time_zone=zone)
    )
    return rows


def run_demo(
    database_url: str,
    echo: Callable[[str], None],
    *,
    recipients: int = 30,
    time_scale: float = 0.01,
    timeout_s: float = 120.0,
    seed: int = 7,
) -> DemoResult:
    """Run a demo campaign to completion on ``database_url``; prints as it goes."""
    upgrade(database_url)
    # The simulator is its own account: pace it faster than Twilio's default 1 call/s.
    settings = Settings(database_url=database_url, redis_url=None, calls_per_second=20)
    queue = InProcessQueue(workers=MAX_CONCURRENCY + 2)
    profile = SimulationProfile(ring_s=Uniform(2.0, 8.0), talk_s=Uniform(20.0, 60.0))
    holder: dict[str, Any] = {}

    def sink_target(attempt_id: str, kind: Any, params: Any) -> None:
        holder["rt"].dialer.deliver(attempt_id, kind, params)

    class _Sink:
        def deliver(self, attempt_id: str, kind: Any, params: Any) -> None:
            sink_target(attempt_id, kind, params)

    provider = SimulatedProvider.realtime(
        _Sink(), profile=profile, seed=seed, time_scale=time_scale
    )
    runtime = build_runtime(
        settings,
        queue,
        provider=provider,
        dispatch=DispatchConfig(round_size=10),
        refill_here=True,
    )
    holder["rt"] = runtime
    bind_runtime(queue, runtime)
    now = utc_now()
    zone = _callable_zone(now)
    with runtime.sessions() as session, session.begin():
        tenant = tenancy.ensure_tenant(session, DEMO_USER, now=now)
        suppression.add(session, tenant.id, SUPPRESSED, "asked not to be called", now=now)
        campaign, batch = campaigns.create(
            session,
            tenant.id,
            {
                "name": "Demo renewals",
                "assistant_id": "demo-assistant",
                "phone_number_id": "demo-number",
                "caller_id_number": "+14155550100",
                "max_concurrency": MAX_CONCURRENCY,
                "retry_policy": RETRY,
                "speech_settings": {"style": "friendly"},
                "opening_message_template": "Hi {{first_name}}, a quick word about your renewal.",
                "machine_detection_timeout_seconds": 30,
            },
            now=now,
            recipients=_recipients(zone, recipients),
        )
        campaign_id, tenant_id = campaign.id, tenant.id
    for rejection in batch.rejected if batch else []:
        echo(f"not added: {rejection.phone_number} ({rejection.reason})")
    echo(f"campaign {campaign_id}: {recipients + 2} recipients, max_concurrency {MAX_CONCURRENCY}")
    echo(
        f"recipients called in {zone} (inside legal hours now); simulator at {1 / time_scale:.0f}x"
    )
    with runtime.sessions() as session, session.begin():
        campaigns.act(session, tenant_id, campaign_id, CampaignAction.START, now=utc_now())
    loop = SchedulerLoop(runtime, interval_s=0.05, reconcile_interval_s=5.0)
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), name="dialer-scheduler", daemon=True)
    thread.start()
    key = SlotScope(campaign_id, tenant_id).campaign_key(runtime.stores.semaphore.prefix)
    peak, last_print = 0, 0.0
    deadline = time.monotonic() + timeout_s
    status = CampaignStatus.RUNNING
    try:
        while time.monotonic() < deadline:
            peak = max(peak, runtime.stores.semaphore.count(key))
            with runtime.sessions() as session:
                status = session.get_one(Campaign, campaign_id).status
                values = counters.read(session, [campaign_id])[campaign_id]
            if time.monotonic() - last_print > 1.0:
                last_print = time.monotonic()
                echo("  " + _progress(values))
            if status is CampaignStatus.COMPLETED:
                break
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(timeout=10)
        queue.close(wait=True)
        runtime.close()
    with runtime.sessions() as session:
        row = session.get_one(Campaign, campaign_id)
        values = counters.read(session, [campaign_id])[campaign_id]
        truth = counters.truth(session, campaign_id)
        endings = session.execute(
            sa.select(Recipient.status, Recipient.reason, sa.func.count())
            .where(Recipient.campaign_id == campaign_id)
            .group_by(Recipient.status, Recipient.reason)
            .order_by(Recipient.status)
        ).all()
        result = DemoResult(
            campaign_id,
            row.status.value,
            row.ended_reason.value if row.ended_reason else None,
            values,
            peak,
        )
    echo(
        f"campaign {result.status} ({result.ended_reason}); peak in flight {peak}/{MAX_CONCURRENCY}"
    )
    echo("where every recipient ended:")
    for status_, reason, n in endings:
        echo(f"  {n:>4}  {status_.value:<10} {reason or ''}")
    echo("calls by outcome: " + _outcomes(values))
    echo("counters match the database: " + ("yes" if values == truth else f"NO {truth}"))
    return result


def _progress(values: dict[str, int]) -> str:
    shown = ("pending", "queued", "in_flight", "waiting_retry", "done", "exhausted")
    return "  ".join(f"{s}={values[counters.RECIPIENT_PREFIX + s]}" for s in shown)


def _outcomes(values: dict[str, int]) -> str:
    return ", ".join(
        f"{name.removeprefix(counters.ATTEMPT_PREFIX)}={n}"
        for name, n in values.items()
        if name.startswith(counters.ATTEMPT_PREFIX) and n
    )
