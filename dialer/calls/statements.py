"""The statements of a call's hot path, built once.

Building and keying a statement costs more than running it here (a dozen short transactions
per call), so the claim round, the dial, ingestion and the end run these prebuilt Core and ORM
statements with bound parameters (the rarer steps build their own). ``*_LOCK`` variants lock
rows on PostgreSQL; SQLite has no row locks (it serialises writers on its own) and gets the
plain ``*_READ``.
"""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import load_only

from dialer.calls.facts import CAMPAIGN_WINDOW_COLUMNS
from dialer.db.models import (
    CallAttempt,
    CallerNumber,
    Campaign,
    ConsentRecord,
    Recipient,
    Suppression,
    Tenant,
)
from dialer.policy.attempt_state import CLAIMABLE_RECIPIENT, AttemptStatus
from dialer.policy.campaign_state import CampaignStatus

ATTEMPTS = cast(sa.Table, CallAttempt.__table__)
_CAMPAIGNS = cast(sa.Table, Campaign.__table__)
_TENANTS = cast(sa.Table, Tenant.__table__)


def suppressed_number(tenant_id: Any, recipient: Any) -> sa.Label[bool]:
    """A column for a query over recipients: whether the recipient's number is on the do-not-call
    list of ``tenant_id`` (a value, or a column of the same query)."""
    return (
        sa.exists()
        .where(
            Suppression.tenant_id == tenant_id,
            Suppression.phone_number == recipient.phone_number,
        )
        .label("suppressed")
    )


def consented_number(tenant_id: Any, recipient: Any, now: Any) -> sa.Label[bool]:
    """A column for a query over recipients: whether the recipient's number has a consent
    record of ``tenant_id`` captured at or before ``now``."""
    return (
        sa.exists()
        .where(
            ConsentRecord.tenant_id == tenant_id,
            ConsentRecord.phone_number == recipient.phone_number,
            ConsentRecord.captured_at <= now,
        )
        .label("consented")
    )


#: The tenant's frequency caps (None: the deployment's default), read with the campaign.
TENANT_CAPS = (
    Tenant.cap_attempts_per_day,
    Tenant.cap_attempts_per_week,
    Tenant.cap_quiet_days_after_answer,
)

# -- rows locked for a move ----------------------------------------------------------------

ATTEMPT_READ = sa.select(CallAttempt).where(CallAttempt.id == sa.bindparam("attempt_id"))
ATTEMPT_LOCK = ATTEMPT_READ.with_for_update()
RECIPIENT_READ = sa.select(Recipient).where(Recipient.id == sa.bindparam("recipient_id"))
RECIPIENT_LOCK = RECIPIENT_READ.with_for_update()

#: What an attempt's end reads of the campaign: its retry policy, state and windows.
END_COLUMNS = load_only(
    Campaign.id,
    Campaign.tenant_id,
    Campaign.status,
    Campaign.ended_reason,
    Campaign.retry_policy,
    *CAMPAIGN_WINDOW_COLUMNS,
)

# -- the claim round -----------------------------------------------------------------------

#: What a dispatch reads of its campaign (anything else loads on first use: closing a window).
_DISPATCH_COLUMNS = load_only(
    Campaign.id,
    Campaign.tenant_id,
    Campaign.status,
    Campaign.ended_reason,
    Campaign.max_concurrency,
    Campaign.caller_id_number,
    Campaign.phone_number_id,
    Campaign.current_run_id,
    Campaign.machine_detection_timeout_seconds,
    Campaign.frequency_caps,
    *CAMPAIGN_WINDOW_COLUMNS,
)
#: A round reads its campaign with the tenant's caps...
ROUND_CAMPAIGN = (
    sa.select(Campaign, Tenant.max_concurrency, Tenant.max_cps, *TENANT_CAPS)
    .join(Tenant, Tenant.id == Campaign.tenant_id)
    .where(Campaign.id == sa.bindparam("campaign_id"))
    .options(_DISPATCH_COLUMNS)
)
#: ...then the campaign's due recipients from ``ix_recipients_due``, each with whether its
#: number is on the tenant's do-not-call list now (read with the rows, one round trip fewer);
#: on PostgreSQL rows another claim holds are skipped, on SQLite the claim's compare-and-set
#: and a single scheduler do it...
DUE = (
    sa.select(Recipient, suppressed_number(sa.bindparam("tenant_id"), Recipient))
    .where(
        Recipient.campaign_id == sa.bindparam("campaign_id"),
        Recipient.status.in_(sorted(CLAIMABLE_RECIPIENT)),
        Recipient.next_attempt_at <= sa.bindparam("now"),
    )
    .order_by(Recipient.next_attempt_at, Recipient.id)
    .limit(sa.bindparam("limit"))
)
DUE_LOCK = DUE.with_for_update(skip_locked=True)
#: ...with, for a campaign that requires consent, whether the number has a consent record.
DUE_CONSENT = DUE.add_columns(
    consented_number(sa.bindparam("tenant_id"), Recipient, sa.bindparam("now"))
)
DUE_CONSENT_LOCK = DUE_CONSENT.with_for_update(skip_locked=True)
#: ...and inserts their attempts, ids back in the order given.
INSERT_ATTEMPTS = sa.insert(ATTEMPTS).returning(ATTEMPTS.c.id, sort_by_parameter_order=True)
#: Dial tasks of these attempts were handed to the queue (the outbox's record).
HANDED_OFF = (
    sa.update(ATTEMPTS)
    .where(ATTEMPTS.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(enqueued_at=sa.bindparam("at"))
)
#: ...each at its own time (executed with one parameter set per attempt).
HANDED_OFF_EACH = (
    sa.update(ATTEMPTS)
    .where(ATTEMPTS.c.id == sa.bindparam("attempt_id"))
    .values(enqueued_at=sa.bindparam("at"))
)
_FREED = _CAMPAIGNS.alias("freed")
#: The running campaigns of a campaign's tenant when the tenant has a cap (runs at every
#: refill).
SHARING = (
    sa.select(_CAMPAIGNS.c.id)
    .join(_FREED, _FREED.c.tenant_id == _CAMPAIGNS.c.tenant_id)
    .join(_TENANTS, _TENANTS.c.id == _FREED.c.tenant_id)
    .where(
        _FREED.c.id == sa.bindparam("campaign_id"),
        _TENANTS.c.max_concurrency.is_not(None),
        _CAMPAIGNS.c.status == CampaignStatus.RUNNING,
    )
    .order_by(_CAMPAIGNS.c.created_at, _CAMPAIGNS.c.id)
)

# -- the dial ------------------------------------------------------------------------------

#: What the dial path reads of the campaign (not its context or speech settings).
_DIAL_COLUMNS = load_only(
    Campaign.id,
    Campaign.tenant_id,
    Campaign.status,
    Campaign.ended_reason,
    Campaign.max_concurrency,
    Campaign.machine_detection_timeout_seconds,
    Campaign.frequency_caps,
    *CAMPAIGN_WINDOW_COLUMNS,
)
#: A dial's job: the attempt, its campaign, the limits, and its recipient's screen facts.
JOB_READ = (
    sa.select(
        CallAttempt,
        Campaign,
        Tenant.max_concurrency,
        CallerNumber.max_concurrency,
        Recipient.time_zone,
        Recipient.region,
        suppressed_number(Campaign.tenant_id, Recipient),
        Tenant.max_cps,
        consented_number(Campaign.tenant_id, Recipient, sa.bindparam("now")),
        *TENANT_CAPS,
    )
    .join(Campaign, Campaign.id == CallAttempt.campaign_id)
    .join(Tenant, Tenant.id == Campaign.tenant_id)
    .join(Recipient, Recipient.id == CallAttempt.recipient_id)
    .outerjoin(CallerNumber, CallerNumber.id == Recipient.caller_number_id)
    .where(CallAttempt.id == sa.bindparam("attempt_id"))
    .options(_DIAL_COLUMNS)
)
JOB_LOCK = JOB_READ.with_for_update(of=CallAttempt)  # the attempt only: the rest is read
#: The claim's compare-and-set: Core (the ORM's synchronisation of an UPDATE with the session
#: costs more than the statement itself here).
CLAIM = (
    sa.update(ATTEMPTS)
    .where(
        ATTEMPTS.c.id == sa.bindparam("attempt_id"),
        ATTEMPTS.c.status == AttemptStatus.QUEUED,
    )
    .values(status=AttemptStatus.DIALING, dialed_at=sa.bindparam("at"))
)
#: A callback may have stored the call id first (it can arrive before ``place_call``
#: returns); the provider's name is still ours to write then. Another call id stays.
RECORD_DIAL = (
    sa.update(ATTEMPTS)
    .where(
        ATTEMPTS.c.id == sa.bindparam("attempt_id"),
        sa.or_(
            ATTEMPTS.c.provider_call_id.is_(None),
            ATTEMPTS.c.provider_call_id == sa.bindparam("call_id"),
        ),
    )
    .values(provider=sa.bindparam("provider_name"), provider_call_id=sa.bindparam("call_id"))
)

# -- ingestion -----------------------------------------------------------------------------

#: What ingesting a callback reads of its attempt: columns, not an ORM object (five
#: callbacks a call).
INGEST_READ = sa.select(
    ATTEMPTS.c.id,
    ATTEMPTS.c.campaign_id,
    ATTEMPTS.c.recipient_id,
    ATTEMPTS.c.from_number,
    ATTEMPTS.c.status,
    ATTEMPTS.c.outcome,
    ATTEMPTS.c.provider_call_id,
    ATTEMPTS.c.answered_by,
    ATTEMPTS.c.answered_at,
    ATTEMPTS.c.stream_started_at,
    ATTEMPTS.c.abandoned,
).where(ATTEMPTS.c.id == sa.bindparam("attempt_id"))
INGEST_LOCK = INGEST_READ.with_for_update()
#: Sets the columns its parameters name (other than ``b_attempt_id``).
ATTEMPT_UPDATE = sa.update(ATTEMPTS).where(ATTEMPTS.c.id == sa.bindparam("b_attempt_id"))
