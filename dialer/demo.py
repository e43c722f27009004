"""The embedded demo: a whole campaign, dialed end to end on the embedded defaults.

SQLite, the in-memory semaphore and pacer, the simulator (sped up) and the in-process task
queue (:func:`~dialer.runtime.embedded_runtime`, what ``dialer scheduler`` runs without Redis):
the same services the distributed deployment runs, in one process. It creates a
campaign through the same service calls the API makes, starts it, runs the scheduler until
the campaign completes, and prints its progress, the peak of calls in flight, and where every
recipient ended and why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from dialer.api.schemas.recipients import RecipientIn
from dialer.calls import counters
from dialer.calls.dispatch import DispatchConfig
from dialer.clock import utc_now
from dialer.db.migrate import upgrade
from dialer.db.models import Campaign, Recipient
from dialer.errors import Conflict
from dialer.policy.campaign_state import CampaignAction, CampaignStatus
from dialer.policy.open_places import OpenPlace, place_open
from dialer.runtime import Runtime, embedded_runtime
from dialer.services import campaigns, phone_numbers, suppression, tenancy
from dialer.settings import Settings
from scheduler.loop import SchedulerLoop

DEMO_USER = "demo"
#: The demo's recipients are of a place whose calling hours stay open at least this long.
OPEN_FOR = timedelta(hours=1)
CALLER = "+14155550100"
SUPPRESSED = "+13035550199"
MAX_CONCURRENCY = 5
RETRY = {"max_attempts": 3, "backoff": {"kind": "fixed", "delay": "2s"}, "jitter": 0.0}
#: The demo's callees (``DIALER_SIMULATOR_PROFILE``): ringing 2 to 8 s, talking 20 to 60 s.
SIMULATED_CALLEES = "ring=uniform:2,8;talk=uniform:20,60"


@dataclass(frozen=True)
class DemoResult:
    campaign_id: str
    status: str
    ended_reason: str | None
    counts: dict[str, int]
    peak_in_flight: int


def _recipients(place: OpenPlace, n: int) -> list[RecipientIn]:
    rows = [
        RecipientIn(phone_number=place.number(1000 + i), metadata={"first_name": f"Guest {i}"})
        for i in range(n)
    ]
    # No time zone is known for a satellite number: skipped, with that reason.
    rows.append(RecipientIn(phone_number="+870 301 234 567", metadata={"first_name": "Sat"}))
    rows.append(RecipientIn(phone_number=SUPPRESSED, metadata={"first_name": "Dee"}))
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
    settings = Settings(
        database_url=database_url,
        redis_url=None,
        # The simulator is its own account: pace it faster than Twilio's default 1 call/s.
        calls_per_second=20,
        simulator_seed=seed,
        simulator_time_scale=time_scale,
        simulator_profile=SIMULATED_CALLEES,
    )
    runtime = embedded_runtime(
        settings, dispatch=DispatchConfig(round_size=10), threads=MAX_CONCURRENCY + 2
    )
    try:
        campaign_id, tenant_id = _create(runtime, echo, recipients, utc_now())
        echo(f"simulator at {1 / time_scale:.0f}x")
        with runtime.sessions() as session, session.begin():
            campaigns.act(session, tenant_id, campaign_id, CampaignAction.START, now=utc_now())
        peak = _run(runtime, campaign_id, echo, timeout_s)
    finally:
        runtime.close()
    return _report(runtime, campaign_id, peak, echo)


def _create(
    runtime: Runtime, echo: Callable[[str], None], recipients: int, now: datetime
) -> tuple[str, str]:
    """The demo's tenant, do-not-call entry and campaign; returns (campaign id, tenant id)."""
    # Numbers of a place inside its calling hours now (the real rules: weekly hours, holidays).
    place = place_open(now, for_at_least=OPEN_FOR)
    with runtime.sessions() as session, session.begin():
        tenant_id = tenancy.ensure_tenant(session, DEMO_USER, now=now).id
        suppression.add(
            session,
            tenant_id,
            SUPPRESSED,
            "asked not to be called",
            source=suppression.SOURCE_OPERATOR,
            now=now,
        )
    caller = _register_caller(runtime, tenant_id, now)
    echo(f"caller number {CALLER}")
    with runtime.sessions() as session, session.begin():
        campaign, batch = campaigns.create(
            session,
            tenant_id,
            {
                "name": "Demo renewals",
                "assistant_id": "demo-assistant",
                "phone_number_id": caller,
                "max_concurrency": MAX_CONCURRENCY,
                "retry_policy": RETRY,
                "speech_settings": {"style": "friendly"},
                "opening_message_template": "Hi {{first_name}}, a quick word about your renewal.",
                "machine_detection_timeout_seconds": 30,
            },
            now=now,
            recipients=_recipients(place, recipients),
        )
        campaign_id = campaign.id
    for rejection in batch.rejected if batch else []:
        echo(f"not added: {rejection.phone_number} ({rejection.reason})")
    echo(f"campaign {campaign_id}: {recipients + 2} recipients, max_concurrency {MAX_CONCURRENCY}")
    echo(f"recipients called in {place.name}, {place.zone} (inside its calling hours now)")
    return campaign_id, tenant_id


def _register_caller(runtime: Runtime, tenant_id: str, now: datetime) -> str:
    """The demo's caller number, registered as a tenant registers one (the simulator owns any
    valid number): its id, or the number when an earlier demo on this database registered it."""
    try:
        row = phone_numbers.register(
            runtime.sessions,
            tenant_id,
            CALLER,
            "Demo line",
            caller_id_status=runtime.provider.caller_id_status,
            now=now,
        )
    except Conflict:
        return CALLER
    return row.id


def _run(runtime: Runtime, campaign_id: str, echo: Callable[[str], None], timeout_s: float) -> int:
    """Run the scheduler until the campaign completes (or ``timeout_s``); the peak in flight."""
    loop = SchedulerLoop(runtime, interval_s=0.05, reconcile_interval_s=5.0)
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), name="dialer-scheduler", daemon=True)
    thread.start()
    peak, last_print = 0, 0.0
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            peak = max(peak, runtime.stores.slots.in_use(campaign_id))
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
    return peak


def _report(
    runtime: Runtime, campaign_id: str, peak: int, echo: Callable[[str], None]
) -> DemoResult:
    """Where the campaign ended, every recipient's end and why, and the counters' check."""
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
