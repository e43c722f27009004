"""Call attempts from claim to end: the only code that moves an attempt or its recipient.

Every function runs inside the caller's transaction and leaves slot release to the caller,
after commit (a reconcile between the two can then never re-add a finished holder). Each
returns what the caller must do next as a value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, load_only

from dialer.concurrency.keys import SlotScope, layered_limits
from dialer.concurrency.semaphore.base import Limit
from dialer.db.bulk import for_update, insert_ignoring_conflicts_on, is_postgres
from dialer.db.models import CallAttempt, CallerNumber, CallEvent, Campaign, Recipient, Tenant
from dialer.policy.attempt_state import (
    AttemptState,
    AttemptStatus,
    Outcome,
    RecipientStatus,
    advance,
    move_recipient,
    recipient_after_outcome,
)
from dialer.policy.calling_hours import NotCallable
from dialer.policy.campaign_state import CampaignStatus, EndedReason
from dialer.policy.retry import RetryPolicy, next_attempt
from dialer.services import counters, windows
from dialer.services.suppression import suppressed_number
from dialer.telephony.base import CallStatus
from dialer.telephony.events import ProviderEvent, attempt_status_for, outcome_for

log = logging.getLogger(__name__)

#: Retryable provider refusals (429, 5xx) of one attempt before it ends as failed.
MAX_PROVIDER_RETRIES = 5
#: Recipient reasons for ends that are not call outcomes.
REASON_SUPPRESSED = "suppressed"
REASON_WINDOW_CLOSED = "window-closed"
REASON_NO_WINDOW_LEFT = "no-window-left"
REASON_STOPPED = "campaign-stopped"


@dataclass(frozen=True, slots=True)
class DialJob:
    """Everything a worker needs to place one attempt's call; small, immutable, no ORM."""

    attempt_id: int
    campaign_id: str
    tenant_id: str
    recipient_id: int
    to: str
    from_: str
    campaign_limit: int
    tenant_limit: int | None
    caller_limit: int | None
    machine_detection_timeout_s: int

    @property
    def scope(self) -> SlotScope:
        return SlotScope(self.campaign_id, self.tenant_id, self.from_ or None)

    def limits(self) -> tuple[Limit, ...]:
        return layered_limits(self.scope, self.campaign_limit, self.tenant_limit, self.caller_limit)


@dataclass(frozen=True, slots=True)
class Ended:
    """An attempt ended in this transaction: release its slots after commit."""

    attempt_id: int
    campaign_id: str
    outcome: Outcome
    scope: SlotScope


class _Ending(Protocol):
    """What ending an attempt reads of it: an ORM attempt, or :class:`_EndingRow`."""

    @property
    def id(self) -> int: ...
    @property
    def campaign_id(self) -> str: ...
    @property
    def recipient_id(self) -> int: ...
    @property
    def from_number(self) -> str | None: ...
    @property
    def outcome(self) -> Outcome | None: ...


@dataclass(frozen=True, slots=True)
class _EndingRow:
    id: int
    campaign_id: str
    recipient_id: int
    from_number: str | None
    outcome: Outcome


def _ended(session: Session, attempt: _Ending, campaign: Campaign | None = None) -> Ended:
    """The record of ``attempt``'s end; pass its campaign when this transaction loaded it."""
    assert attempt.outcome is not None
    if campaign is None:
        campaign = session.get_one(Campaign, attempt.campaign_id, options=[_END_COLUMNS])
    scope = SlotScope(attempt.campaign_id, campaign.tenant_id, attempt.from_number)
    return Ended(attempt.id, attempt.campaign_id, attempt.outcome, scope)


def _attempt(session: Session, attempt_id: int, *, lock: bool) -> CallAttempt | None:
    stmt = sa.select(CallAttempt).where(CallAttempt.id == attempt_id)
    return session.scalars(for_update(session, stmt) if lock else stmt).one_or_none()


def _recipient(session: Session, recipient_id: int) -> Recipient:
    stmt = _RECIPIENT_LOCK if is_postgres(session) else _RECIPIENT_READ
    recipient: Recipient = session.scalars(stmt, {"recipient_id": recipient_id}).one()
    return recipient


#: Statements of the hot paths, built once (building and keying one costs more than running
#: it). SQLite has no row locks: it serialises writers on its own.
_RECIPIENT_READ = sa.select(Recipient).where(Recipient.id == sa.bindparam("recipient_id"))
_RECIPIENT_LOCK = _RECIPIENT_READ.with_for_update()


#: What the dial path reads of the campaign (not its context or speech settings).
_DIAL_COLUMNS = load_only(
    Campaign.id,
    Campaign.tenant_id,
    Campaign.status,
    Campaign.max_concurrency,
    Campaign.machine_detection_timeout_seconds,
    *windows.CAMPAIGN_WINDOW_COLUMNS,
)


#: What an attempt's end reads of the campaign: its retry policy, state and windows.
_END_COLUMNS = load_only(
    Campaign.id,
    Campaign.tenant_id,
    Campaign.status,
    Campaign.ended_reason,
    Campaign.retry_policy,
    *windows.CAMPAIGN_WINDOW_COLUMNS,
)


@dataclass(frozen=True, slots=True)
class Locked:
    """A queued attempt whose row this transaction locked, with its campaign and its job."""

    attempt: CallAttempt
    campaign: Campaign
    job: DialJob
    #: The recipient's number was on the tenant's do-not-call list when the row was locked.
    suppressed: bool


_JOB_READ = (
    sa.select(
        CallAttempt,
        Campaign,
        Tenant.max_concurrency,
        CallerNumber.max_concurrency,
        suppressed_number(Campaign.tenant_id, Recipient),
    )
    .join(Campaign, Campaign.id == CallAttempt.campaign_id)
    .join(Tenant, Tenant.id == Campaign.tenant_id)
    .join(Recipient, Recipient.id == CallAttempt.recipient_id)
    .outerjoin(CallerNumber, CallerNumber.id == Recipient.caller_number_id)
    .where(CallAttempt.id == sa.bindparam("attempt_id"))
    .options(_DIAL_COLUMNS)
)
_JOB_LOCK = _JOB_READ.with_for_update(of=CallAttempt)  # the attempt only: the rest is read


def _lock_with_job(session: Session, attempt_id: int) -> Locked | None:
    """Lock the attempt's row and read its campaign and limits, in one statement."""
    stmt = _JOB_LOCK if is_postgres(session) else _JOB_READ
    row = session.execute(stmt, {"attempt_id": attempt_id}).one_or_none()
    if row is None:
        return None
    attempt, campaign, tenant_limit, caller_limit, suppressed = row
    job = DialJob(
        attempt_id=attempt.id,
        campaign_id=attempt.campaign_id,
        tenant_id=campaign.tenant_id,
        recipient_id=attempt.recipient_id,
        to=attempt.to_number,
        from_=attempt.from_number or "",
        campaign_limit=campaign.max_concurrency,
        tenant_limit=tenant_limit,
        caller_limit=caller_limit,
        machine_detection_timeout_s=campaign.machine_detection_timeout_seconds or 30,
    )
    return Locked(attempt, campaign, job, bool(suppressed))


def lock_queued(session: Session, attempt_id: int) -> Locked | None:
    """Lock a still-queued attempt's row for this transaction, with its job; else None.

    The dial path takes its slot and its pace while holding the lock, then claims in the same
    transaction (:func:`claim_locked`): one transaction from reading the job to the claim.
    """
    locked = _lock_with_job(session, attempt_id)
    if locked is None or locked.attempt.status is not AttemptStatus.QUEUED:
        return None
    return locked


@dataclass(frozen=True, slots=True)
class Claimed:
    job: DialJob


@dataclass(frozen=True, slots=True)
class NotDialed:
    """The attempt will not be dialed; ``ended`` is set when it ended here (release the slot)."""

    reason: str
    ended: Ended | None


def claim(session: Session, attempt_id: int, *, now: datetime) -> Claimed | NotDialed:
    """Move a queued attempt to dialing, once: the compare-and-set that makes dialing at most once.

    Checked again right before dialing: the campaign still runs, the number is not suppressed,
    the recipient's calling window is open. Otherwise the attempt ends unstarted and the
    recipient goes back to wait (or ends, when suppressed).
    """
    locked = _lock_with_job(session, attempt_id)
    if locked is None:
        return NotDialed("no-such-attempt", None)
    if locked.attempt.status is not AttemptStatus.QUEUED:
        return NotDialed(f"already-{locked.attempt.status.value}", None)
    return claim_locked(session, locked, now=now)


def claim_locked(session: Session, locked: Locked, *, now: datetime) -> Claimed | NotDialed:
    """:func:`claim` for a queued attempt already locked in this session (see
    :func:`lock_queued`)."""
    attempt, campaign = locked.attempt, locked.campaign
    recipient = _recipient(session, attempt.recipient_id)
    if campaign.status is not CampaignStatus.RUNNING:
        return NotDialed(
            "campaign-not-running",
            _end_unstarted(session, attempt, recipient, RecipientStatus.PENDING, None, now),
        )
    if locked.suppressed:
        return NotDialed(
            REASON_SUPPRESSED,
            _end_unstarted(
                session, attempt, recipient, RecipientStatus.SUPPRESSED, REASON_SUPPRESSED, now
            ),
        )
    window = windows.of_recipient(windows.of_campaign(campaign), recipient)
    if isinstance(window, NotCallable) or not window.allows(now):
        ended = _end_unstarted(
            session, attempt, recipient, RecipientStatus.WAITING_RETRY, None, now
        )
        recipient.next_attempt_at = (
            None if isinstance(window, NotCallable) else window.next_open(now)
        ) or now + timedelta(hours=1)
        return NotDialed("outside-calling-window", ended)
    cas = session.execute(_CLAIM, {"attempt_id": attempt.id, "at": now})
    if cas.rowcount != 1:  # type: ignore[attr-defined]
        return NotDialed("lost-the-claim", None)
    _move(session, recipient, RecipientStatus.IN_FLIGHT, now=now)
    return Claimed(locked.job)


def _end_unstarted(
    session: Session,
    attempt: CallAttempt,
    recipient: Recipient,
    target: RecipientStatus,
    reason: str | None,
    now: datetime,
) -> Ended:
    """End an attempt that never dialed: canceled, and it does not count against retries."""
    attempt.status = AttemptStatus.ENDED
    attempt.outcome = Outcome.CANCELED
    attempt.ended_at = now
    attempt.error_code = "not-dialed"
    counters.bump(session, attempt.campaign_id, {counters.outcome_key(Outcome.CANCELED): 1})
    recipient.run_attempts = max(0, recipient.run_attempts - 1)
    _move(session, recipient, target, now=now, reason=reason)
    return _ended(session, attempt)


def _move(
    session: Session,
    recipient: Recipient,
    target: RecipientStatus,
    *,
    now: datetime,
    reason: str | None = None,
) -> None:
    source = recipient.status
    recipient.status = move_recipient(source, target)
    recipient.reason = reason
    recipient.updated_at = now
    counters.bump(session, recipient.campaign_id, counters.moved(source, target))


def start_dialing(session: Session, attempt_ids: list[int], *, now: datetime) -> None:
    """Attempts this transaction claimed go straight to dialing: their caller places the calls
    right after the commit (no dial task, no second lock). The compare-and-set of
    :func:`claim`, for rows no other transaction can see yet."""
    if attempt_ids:
        session.execute(_CLAIM, [{"attempt_id": i, "at": now} for i in attempt_ids])


def record_dial(
    session: Session, attempt_id: int, provider: str, provider_call_id: str, *, now: datetime
) -> None:
    """Store the provider's call id the moment we have it (callbacks may already be racing)."""
    session.execute(
        _RECORD_DIAL,
        {"attempt_id": attempt_id, "provider_name": provider, "call_id": provider_call_id},
    )


def requeue(session: Session, attempt_id: int, *, now: datetime, refused: bool = True) -> bool:
    """Put a dialing attempt whose call was not placed (no call exists) back in queue.

    ``refused``: the provider refused it retryably, which counts; after too many refusals it
    returns False and the caller ends it as failed (and releases). Without ``refused`` (the
    call never went out: its slot was lost before the dial) nothing counts.
    """
    attempt = _attempt(session, attempt_id, lock=True)
    if attempt is None or attempt.status is not AttemptStatus.DIALING:
        return False
    if attempt.provider_call_id is not None:
        raise AssertionError("a call exists for this attempt; it must not be dialed again")
    if refused:
        attempt.provider_retries += 1
        if attempt.provider_retries > MAX_PROVIDER_RETRIES:
            return False
    attempt.status = AttemptStatus.QUEUED
    attempt.dialed_at = None
    attempt.enqueued_at = now  # the caller sends its dial task again
    recipient = _recipient(session, attempt.recipient_id)
    source = recipient.status
    recipient.status = RecipientStatus.QUEUED  # the one backward move: no call ever existed
    counters.bump(session, recipient.campaign_id, counters.moved(source, RecipientStatus.QUEUED))
    return True


def end(
    session: Session,
    attempt_id: int,
    outcome: Outcome,
    *,
    now: datetime,
    error_code: str | None = None,
    error_message: str | None = None,
    duration_s: int | None = None,
) -> Ended | None:
    """End an attempt with ``outcome`` (first end wins) and apply the retry policy."""
    attempt = _attempt(session, attempt_id, lock=True)
    if attempt is None or attempt.status is AttemptStatus.ENDED:
        return None
    attempt.status = AttemptStatus.ENDED
    attempt.outcome = outcome
    attempt.ended_at = now
    if error_code is not None:
        attempt.error_code = error_code[:30]
        attempt.error_message = error_message
    if duration_s is not None:
        attempt.duration_s = duration_s
    return _ended(session, attempt, _after_end(session, attempt, now=now))


def _after_end(session: Session, attempt: _Ending, *, now: datetime) -> Campaign | None:
    """Count the outcome and move the recipient on (retry policy); returns the campaign when
    it was loaded (the session holds it weakly: the caller keeps it for :func:`_ended`)."""
    outcome = attempt.outcome
    assert outcome is not None
    counters.bump(session, attempt.campaign_id, {counters.outcome_key(outcome): 1})
    recipient = _recipient(session, attempt.recipient_id)
    if (
        recipient.status is not RecipientStatus.IN_FLIGHT
        and recipient.status is not RecipientStatus.QUEUED
    ):
        recipient.last_outcome = outcome
        return None  # already ended by a stop or window close while the call was live
    campaign = session.get_one(Campaign, attempt.campaign_id, options=[_END_COLUMNS])
    recipient.last_outcome = outcome  # after the load, whose autoflush would write it alone
    policy = RetryPolicy.model_validate(campaign.retry_policy)
    retry_at = next_attempt(
        policy, recipient.run_attempts, outcome, now, jitter_seed=str(recipient.id)
    )
    reason: str | None = None
    if retry_at is not None:
        window = windows.of_recipient(windows.of_campaign(campaign), recipient)
        opens = None if isinstance(window, NotCallable) else window.next_open(retry_at)
        if opens is None:
            retry_at, reason = None, REASON_NO_WINDOW_LEFT
        else:
            retry_at = opens
    target = recipient_after_outcome(outcome, retry_at is not None)
    if reason == REASON_NO_WINDOW_LEFT and target is RecipientStatus.EXHAUSTED:
        target = RecipientStatus.SKIPPED  # attempts were left; the windows were not
    if target is RecipientStatus.WAITING_RETRY and campaign.status is CampaignStatus.COMPLETED:
        closed = campaign.ended_reason is EndedReason.WINDOW_CLOSED
        target = RecipientStatus.SKIPPED if closed else RecipientStatus.CANCELED
        reason = REASON_WINDOW_CLOSED if closed else REASON_STOPPED
    if target is RecipientStatus.EXHAUSTED and reason is None:
        reason = f"last-outcome-{outcome.value}"
    if retry_at is not None and target is RecipientStatus.WAITING_RETRY:
        recipient.next_attempt_at = retry_at
    _move(session, recipient, target, now=now, reason=reason)
    return campaign


@dataclass(frozen=True, slots=True)
class Ingested:
    """What an event did: nothing (duplicate, stale), a progress step, or the end."""

    applied: bool
    ended: Ended | None = None
    #: Nothing applied: a completed call with no AMD verdict yet; ask the provider, then
    #: ingest again with its answer (see ``ask_verdict``).
    needs_verdict: bool = False


#: Sequence stored for AMD callbacks, which have none: one verdict per call.
AMD_SEQUENCE = -1


def ingest(
    session: Session,
    attempt_id: int,
    event: ProviderEvent,
    *,
    now: datetime,
    unknown_is_machine: bool = False,
    ask_verdict: bool = False,
) -> Ingested:
    """Apply one provider callback: deduplicated, forward-only, first end wins.

    ``unknown_is_machine`` counts an AMD verdict of ``unknown`` as voicemail (else human).
    With ``ask_verdict``, a ``completed`` status that neither carries an AMD verdict nor finds
    one stored changes nothing and says ``needs_verdict``: with async AMD the verdict has its
    own callback, which may come after ``completed``, and the first end wins, so the caller asks
    the provider's record rather than guess human.
    """
    postgres = is_postgres(session)
    row = session.execute(
        _INGEST_LOCK if postgres else _INGEST_READ, {"attempt_id": attempt_id}
    ).one_or_none()
    if row is None:
        return Ingested(False)
    changes: dict[str, Any] = {}
    result = _apply(session, row, event, changes, now, unknown_is_machine, ask_verdict, postgres)
    if changes:
        session.execute(_ATTEMPT_UPDATE, {"b_attempt_id": row.id, **changes})
    if result is not None:
        return result
    assert changes.get("outcome") is not None
    ending = _EndingRow(
        row.id, row.campaign_id, row.recipient_id, row.from_number, changes["outcome"]
    )
    return Ingested(True, _ended(session, ending, _after_end(session, ending, now=now)))


_ATTEMPTS = cast(sa.Table, CallAttempt.__table__)
_EVENTS = cast(sa.Table, CallEvent.__table__)
#: What ingesting a callback reads of its attempt: columns, not an ORM object (the hot path,
#: five callbacks a call), with statements built once.
_INGEST_READ = sa.select(
    _ATTEMPTS.c.id,
    _ATTEMPTS.c.campaign_id,
    _ATTEMPTS.c.recipient_id,
    _ATTEMPTS.c.from_number,
    _ATTEMPTS.c.status,
    _ATTEMPTS.c.outcome,
    _ATTEMPTS.c.provider_call_id,
    _ATTEMPTS.c.answered_by,
    _ATTEMPTS.c.answered_at,
).where(_ATTEMPTS.c.id == sa.bindparam("attempt_id"))
_INGEST_LOCK = _INGEST_READ.with_for_update()
#: Sets the columns its parameters name (other than ``b_attempt_id``).
_ATTEMPT_UPDATE = sa.update(_ATTEMPTS).where(_ATTEMPTS.c.id == sa.bindparam("b_attempt_id"))
#: The claim's compare-and-set and the call id's record: Core statements built once (the ORM's
#: synchronisation of an UPDATE with the session costs more than the statement itself here).
_CLAIM = (
    sa.update(_ATTEMPTS)
    .where(
        _ATTEMPTS.c.id == sa.bindparam("attempt_id"),
        _ATTEMPTS.c.status == AttemptStatus.QUEUED,
    )
    .values(status=AttemptStatus.DIALING, dialed_at=sa.bindparam("at"))
)
_RECORD_DIAL = (
    sa.update(_ATTEMPTS)
    .where(_ATTEMPTS.c.id == sa.bindparam("attempt_id"), _ATTEMPTS.c.provider_call_id.is_(None))
    .values(provider=sa.bindparam("provider_name"), provider_call_id=sa.bindparam("call_id"))
)


@cache
def _event_insert(postgres: bool) -> Any:
    """``INSERT`` of one callback into the log, doing nothing if it is there already."""
    dialect = "postgresql" if postgres else "sqlite"
    return insert_ignoring_conflicts_on(dialect, _EVENTS).returning(_EVENTS.c.id)


def _apply(
    session: Session,
    row: Any,
    event: ProviderEvent,
    changes: dict[str, Any],
    now: datetime,
    unknown_is_machine: bool,
    ask_verdict: bool,
    postgres: bool,
) -> Ingested | None:
    """The decision of :func:`ingest` for the attempt ``row``: fills ``changes`` (columns to
    write) and returns the result, or None when the event ended the attempt."""
    if row.provider_call_id is None:
        # The callback outran the worker's record of the call id; adopt it.
        changes["provider_call_id"] = event.provider_call_id
    elif row.provider_call_id != event.provider_call_id:
        log.warning(
            "attempt %s: callback for call %s, expected %s; ignored",
            row.id,
            event.provider_call_id,
            row.provider_call_id,
        )
        return Ingested(False)
    if (
        ask_verdict
        and event.call_status is CallStatus.COMPLETED
        and event.answered_by is None
        and row.answered_by is None
        and row.status is not AttemptStatus.ENDED
    ):
        changes.clear()  # nothing applied: the call id is adopted by the second pass
        return Ingested(False, needs_verdict=True)
    sequence = AMD_SEQUENCE if event.kind == "amd" else event.sequence_number
    if sequence is not None:
        inserted = session.execute(
            _event_insert(postgres),
            {
                "attempt_id": row.id,
                "provider_call_id": event.provider_call_id,
                "kind": event.kind,
                "sequence_number": sequence,
                "call_status": event.call_status.value if event.call_status else None,
                "payload": {},
                "received_at": now,
            },
        ).first()
        if inserted is None:
            return Ingested(False)  # a repeat
    verdict = row.answered_by
    if event.answered_by and verdict is None:
        changes["answered_by"] = verdict = event.answered_by
    if event.kind == "amd" or event.call_status is None:
        return Ingested(True)
    target = attempt_status_for(event.call_status)
    if verdict == "unknown" and unknown_is_machine:
        verdict = "machine"
    outcome = outcome_for(event.call_status, verdict)
    before = AttemptState(row.status, row.outcome)
    if before.status is AttemptStatus.QUEUED:
        return Ingested(False)  # never for a queued attempt: no call was placed
    after = advance(before, target, outcome)
    if after == before:
        return Ingested(False)
    if row.answered_at is None and (
        after.status is AttemptStatus.IN_PROGRESS
        or (after.status is AttemptStatus.ENDED and event.call_status is CallStatus.COMPLETED)
    ):
        changes["answered_at"] = event.timestamp or now
    changes["status"] = after.status
    if after.status is not AttemptStatus.ENDED:
        return Ingested(True)
    assert after.outcome is not None
    changes["outcome"] = after.outcome
    changes["ended_at"] = event.timestamp or now
    changes["duration_s"] = event.duration_s
    if event.sip_response_code and after.outcome is Outcome.FAILED:
        changes["error_code"] = f"sip-{event.sip_response_code}"
    return None
