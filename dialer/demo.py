"""The embedded demo: a campaign on SQLite, planned with the real policies.

It builds the schema, stores a tenant, a campaign and its recipients, and prints for each
recipient whether it may be called now and, if not, when: the same window and retry policies
the scheduler applies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.db.engine import make_engine
from dialer.db.migrate import upgrade
from dialer.db.models import Campaign, Recipient, Suppression, Tenant
from dialer.errors import InvalidPhoneNumber
from dialer.phone import to_e164
from dialer.policy.attempt_state import Outcome, RecipientStatus
from dialer.policy.calling_hours import (
    NotCallable,
    WeeklyScheduleSpec,
    campaign_window,
    legal_hours_for,
    recipient_window,
)
from dialer.policy.retry import RetryPolicy, next_attempt

DEMO_USER = "demo"
DEMO_NUMBERS = (
    ("+1 212 555 0134", None),  # New York
    ("(415) 555-2671", None),  # San Francisco, read as a US national number
    ("+44 20 7946 0000", None),  # London
    ("+61 2 9374 4000", None),  # Sydney
    ("+1 800 555 1234", None),  # toll-free: every North American zone must allow it
    ("+870 301 234 567", None),  # satellite network: no zone is known
    ("+881 612 345 678", "Europe/Berlin"),  # ... unless the recipient carries one
    ("+1 303 555 0199", None),  # on the do-not-call list
    ("not a number", None),
)
SUPPRESSED = "+13035550199"
SCHEDULE = {
    "timezone": "America/New_York",
    "hours": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "20:00"}],
}
RETRY = {"max_attempts": 3, "backoff": {"kind": "list", "delays": ["5m", "30m"]}, "jitter": 0.1}


@dataclass(frozen=True)
class PlanLine:
    number: str
    verdict: str


def run_demo(database_url: str, now: datetime, echo: Callable[[str], None]) -> list[PlanLine]:
    """Store the demo campaign at ``database_url`` and print its dialing plan as of ``now``."""
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            campaign = _store_campaign(session, echo)
            plan = _plan(session, campaign, now)
    finally:
        engine.dispose()
    echo(f"\nDialing plan as of {now.isoformat(timespec='minutes')}:")
    for line in plan:
        echo(f"  {line.number:<16} {line.verdict}")
    policy = RetryPolicy.model_validate(RETRY)
    echo("\nRetry schedule for a recipient who is always busy:")
    due: datetime | None = now
    attempt = 0
    while due is not None:
        attempt += 1
        echo(f"  attempt {attempt} at {due.isoformat(timespec='seconds')}")
        due = next_attempt(policy, attempt, Outcome.BUSY, due, jitter_seed="demo")
    echo(f"  no attempt after #{attempt}: the recipient ends exhausted.")
    return plan


def _store_campaign(session: Session, echo: Callable[[str], None]) -> Campaign:
    tenant = session.scalar(sa.select(Tenant).where(Tenant.user_id == DEMO_USER))
    if tenant is None:
        tenant = Tenant(user_id=DEMO_USER)
        session.add(tenant)
        session.flush()
        session.add(Suppression(tenant_id=tenant.id, phone_number=SUPPRESSED, reason="asked"))
    campaign = Campaign(
        tenant_id=tenant.id,
        name="Demo renewals",
        assistant_id="demo-assistant",
        phone_number_id="demo-number",
        caller_id_number="+14155550100",
        max_concurrency=5,
        retry_policy=RETRY,
        speech_settings={"style": "neutral", "responsiveness": "balanced"},
        weekly_schedule=SCHEDULE,
        opening_message_template="Hi {{first_name}}, this is a reminder about your renewal.",
    )
    session.add(campaign)
    session.flush()
    suppressed = set(
        session.scalars(
            sa.select(Suppression.phone_number).where(Suppression.tenant_id == tenant.id)
        )
    )
    for raw, tz in DEMO_NUMBERS:
        try:
            number = to_e164(raw)
        except InvalidPhoneNumber as exc:
            echo(f"rejected {raw!r}: {exc.reason}")
            continue
        status = RecipientStatus.SUPPRESSED if number in suppressed else RecipientStatus.PENDING
        session.add(
            Recipient(
                campaign_id=campaign.id,
                phone_number=number,
                time_zone=tz,
                status=status,
                reason="do-not-call" if status is RecipientStatus.SUPPRESSED else None,
            )
        )
    session.flush()
    echo(f"campaign {campaign.id} stored with its recipients")
    return campaign


def _plan(session: Session, campaign: Campaign, now: datetime) -> list[PlanLine]:
    weekly = WeeklyScheduleSpec.model_validate(campaign.weekly_schedule)
    window = campaign_window(campaign.schedule_start_time, campaign.schedule_end_time, weekly)
    lines = []
    recipients = session.scalars(
        sa.select(Recipient).where(Recipient.campaign_id == campaign.id).order_by(Recipient.id)
    )
    for person in recipients:
        if person.status is RecipientStatus.SUPPRESSED:
            lines.append(PlanLine(person.phone_number, "never: on the do-not-call list"))
            continue
        hours = legal_hours_for(person.phone_number, person.time_zone)
        if isinstance(hours, NotCallable):
            lines.append(PlanLine(person.phone_number, f"never: {hours.reason}"))
            continue
        opens = recipient_window(window, hours).next_open(now)
        if opens is None:
            verdict = "never inside the campaign's window"
        elif opens == now:
            verdict = "callable now"
        else:
            verdict = f"callable from {opens.isoformat(timespec='minutes')}"
        zones = ", ".join(hours.zones) if len(hours.zones) <= 2 else f"{len(hours.zones)} zones"
        lines.append(PlanLine(person.phone_number, f"{verdict} ({zones})"))
    return lines
