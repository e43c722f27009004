"""The one writer of call states: every move of an attempt or a recipient, with its counters.

Nothing else moves an attempt or a recipient from one status to another (the services that
add recipients create them pending, or suppressed): dispatch, the dial path, ingestion, the
reaper and the campaign actions ask this module. Every function runs
inside the caller's transaction and moves the counters in it (:mod:`dialer.calls.counters`),
so a count commits or rolls back with the move it counts. Slot releases are the caller's,
after commit (a reconcile between the two can then never re-add a finished holder): a
function that ends an attempt returns :class:`~dialer.calls.jobs.Ended` for that.

The moves themselves are the policy's (:mod:`dialer.policy.attempt_state`), and so are the
decisions behind them: whether to call (:mod:`dialer.policy.screen`) and where a recipient
goes after a call (:mod:`dialer.policy.settle`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.calls import contacts, counters, facts, health, statements, timeline
from dialer.calls.jobs import AttemptRow, DialJob, Ended
from dialer.concurrency.keys import SlotScope
from dialer.db.bulk import is_postgres
from dialer.db.models import CallAttempt, Campaign, Recipient
from dialer.policy.attempt_state import (
    TERMINAL_RECIPIENT,
    AttemptStatus,
    Outcome,
    RecipientStatus,
    move_recipient,
)
from dialer.policy.health import DEFAULT_STREAM_CONNECT_S
from dialer.policy.retry import RetryPolicy
from dialer.policy.screen import CallNow, Decision, Deferred, Terminal
from dialer.policy.settle import after_outcome

#: Retryable provider refusals (429, 5xx) of one attempt before it ends as failed.
MAX_PROVIDER_RETRIES = 5
#: ``error_code`` of an attempt that ended without ever being dialed.
NOT_DIALED = "not-dialed"


# -- recipients arrive -------------------------------------------------------------------


def recipients_added(session: Session, campaign_id: str, count: int) -> None:
    """``count`` new recipients of the campaign were inserted as pending."""
    counters.bump(session, campaign_id, counters.moved(None, RecipientStatus.PENDING, count))


def recount(session: Session, campaign_id: str) -> dict[str, int]:
    """Set the campaign's counters to its rows after a bulk insert or move; the correction."""
    return counters.recount(session, campaign_id)


# -- dispatch: screen, claim, admit --------------------------------------------------------


def screened_out(session: Session, recipient: Recipient, decision: Decision, now: datetime) -> None:
    """A due recipient dispatch will not claim now: due again later (``reason`` saying which
    window it waits for), or ended for good."""
    if isinstance(decision, Deferred):
        if timeline.changes(recipient, decision):
            # Only a deferral that changes the recipient's reason or due time is noted: the
            # same one made again by a later tick is no new decision.
            timeline.note_decision(session, recipient, decision, at=now)
        if decision.until is not None:
            recipient.next_attempt_at = decision.until
            recipient.reason = decision.reason
    elif isinstance(decision, Terminal):
        timeline.note_decision(session, recipient, decision, at=now)
        _move(session, recipient, decision.status, now=now, reason=decision.reason)


def new_attempts(
    session: Session,
    campaign: Campaign,
    calls: Sequence[tuple[Recipient, str]],
    now: datetime,
) -> list[int]:
    """New queued attempts of ``campaign``'s current run, one per (recipient, number it is
    called from), in one INSERT; their ids in the order given. The recipients are moved by
    :func:`admit` once their slots are taken."""
    rows = [
        {
            "recipient_id": recipient.id,
            "campaign_id": campaign.id,
            "run_id": campaign.current_run_id,
            "attempt_number": recipient.attempt_count + 1,
            "from_number": from_number,
            "to_number": recipient.phone_number,
            "status": AttemptStatus.QUEUED.value,
            "queued_at": now,
            "provider_retries": 0,
        }
        for recipient, from_number in calls
    ]
    return list(session.scalars(statements.INSERT_ATTEMPTS, rows))


def drop_refused(session: Session, attempt_ids: Sequence[int]) -> None:
    """Attempts inserted in this transaction whose slots were refused never existed."""
    if attempt_ids:
        session.execute(sa.delete(CallAttempt).where(CallAttempt.id.in_(attempt_ids)))


def admit(
    session: Session,
    campaign_id: str,
    admitted: Sequence[tuple[DialJob, Recipient]],
    *,
    start: int,
    may_start: Callable[[DialJob], bool] | None,
    now: datetime,
) -> list[DialJob]:
    """Move the recipients of admitted attempts on: the first ``start`` of them, while
    ``may_start`` allows (it takes the call's pace), go in flight with their attempts dialing,
    for the caller to place right after the commit; the rest are queued for dial tasks.
    Returns the jobs started."""
    started: list[DialJob] = []
    starting = may_start is not None
    deltas: Counter[str] = Counter()
    for job, recipient in admitted:
        source = recipient.status
        recipient.status = move_recipient(source, RecipientStatus.QUEUED)
        if starting and len(started) < start:
            assert may_start is not None
            if may_start(job):
                recipient.status = move_recipient(recipient.status, RecipientStatus.IN_FLIGHT)
                started.append(job)
                timeline.note_dialed(session, recipient, job.attempt_id, now)
            else:
                starting = False  # this call must wait: it and the rest go to the queue
        deltas.update(counters.moved(source, recipient.status))
        recipient.reason = None
        recipient.attempt_count += 1
        recipient.run_attempts += 1
        recipient.updated_at = now
    if started:
        session.execute(
            statements.CLAIM, [{"attempt_id": job.attempt_id, "at": now} for job in started]
        )
    counters.bump(session, campaign_id, deltas)
    return started


# -- the dial ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NotDialed:
    """The attempt will not be dialed (the screen's ``decision``); it ended unstarted, and
    ``ended`` says which slots to free (None if it was no longer queued)."""

    decision: Decision
    ended: Ended | None


def claim(session: Session, attempt_id: int, recipient_id: int, now: datetime) -> bool:
    """Move a queued attempt to dialing, and its recipient in flight: the compare-and-set that
    makes dialing at most once. False (nothing changed) if it was no longer queued, or if its
    recipient ended while the attempt waited (:func:`opt_out` could not take the attempt's
    row, which this dial held: it ended the recipient, whose row the dial locks here, and the
    caller ends the attempt with :func:`not_dialed`)."""
    recipient = _recipient(session, recipient_id)
    if recipient.status in TERMINAL_RECIPIENT:
        return False
    cas = session.execute(statements.CLAIM, {"attempt_id": attempt_id, "at": now})
    if cas.rowcount != 1:  # type: ignore[attr-defined]
        return False
    _move(session, recipient, RecipientStatus.IN_FLIGHT, now=now)
    timeline.note_dialed(session, recipient, attempt_id, now)
    return True


def not_dialed(session: Session, attempt_id: int, decision: Decision, now: datetime) -> NotDialed:
    """End a queued attempt the screen turned away right before its dial: canceled, and it
    does not count against the recipient's attempts. The recipient goes where the decision
    says: due again at ``until`` (or once the campaign runs again), or ended with the reason.
    """
    assert not isinstance(decision, CallNow)
    attempt = _attempt(session, attempt_id)
    if attempt is None or attempt.status is not AttemptStatus.QUEUED:
        return NotDialed(decision, None)
    recipient = _recipient(session, attempt.recipient_id)
    attempt.status = AttemptStatus.ENDED
    attempt.outcome = Outcome.CANCELED
    attempt.ended_at = now
    attempt.error_code = NOT_DIALED
    counters.bump(session, attempt.campaign_id, {counters.outcome_key(Outcome.CANCELED): 1})
    recipient.run_attempts = max(0, recipient.run_attempts - 1)
    if recipient.status in TERMINAL_RECIPIENT:
        pass  # ended while its attempt waited (an opt-out): it stays where it is
    elif isinstance(decision, Terminal):
        timeline.note_decision(session, recipient, decision, at=now, attempt_id=attempt_id)
        _move(session, recipient, decision.status, now=now, reason=decision.reason)
    elif decision.until is None:
        timeline.note_decision(session, recipient, decision, at=now, attempt_id=attempt_id)
        _move(session, recipient, RecipientStatus.PENDING, now=now)
    else:
        timeline.note_decision(session, recipient, decision, at=now, attempt_id=attempt_id)
        _move(session, recipient, RecipientStatus.WAITING_RETRY, now=now, reason=decision.reason)
        recipient.next_attempt_at = decision.until
    return NotDialed(decision, _ended(session, attempt))


def record_dial(session: Session, attempt_id: int, provider: str, provider_call_id: str) -> None:
    """Store the provider's call id the moment we have it (callbacks may already be racing)."""
    session.execute(
        statements.RECORD_DIAL,
        {"attempt_id": attempt_id, "provider_name": provider, "call_id": provider_call_id},
    )


def requeue(
    session: Session,
    attempt_id: int,
    *,
    now: datetime,
    refused: bool = True,
    backoff_s: float = 0.0,
) -> float | None:
    """Put a dialing attempt whose call was not placed (no call exists) back in queue, and
    return the countdown its dial task is to be sent again with; None when it was not
    requeued.

    ``refused``: the provider refused it retryably, which counts, and the countdown is
    ``backoff_s`` per refusal so far; after too many refusals it returns None and the caller
    ends it as failed (and releases). Without ``refused`` (the call never went out: its slot
    was lost before the dial) nothing counts and the countdown is ``backoff_s``. The hand-off
    is recorded as due when the task is (the outbox's record).
    """
    attempt = _attempt(session, attempt_id)
    if attempt is None or attempt.status is not AttemptStatus.DIALING:
        return None
    if attempt.provider_call_id is not None:
        raise AssertionError("a call exists for this attempt; it must not be dialed again")
    countdown_s = backoff_s
    if refused:
        attempt.provider_retries += 1
        if attempt.provider_retries > MAX_PROVIDER_RETRIES:
            return None
        countdown_s = backoff_s * attempt.provider_retries
    attempt.status = AttemptStatus.QUEUED
    attempt.dialed_at = None
    contacts.forget(session, attempt_id)  # no call existed: its dial, when it comes, counts
    # The caller sends its dial task again, due after the countdown: a hand-off recorded as
    # due then, or the outbox would take a long backoff for a lost task.
    attempt.enqueued_at = now + timedelta(seconds=countdown_s)
    recipient = _recipient(session, attempt.recipient_id)
    source = recipient.status
    recipient.status = RecipientStatus.QUEUED  # the one backward move: no call ever existed
    timeline.note(
        session,
        recipient,
        timeline.Kind.REQUEUED,
        at=now,
        reason="provider-busy" if refused else "slot-lost",
        until=attempt.enqueued_at,
        attempt_id=attempt_id,
    )
    counters.bump(session, recipient.campaign_id, counters.moved(source, RecipientStatus.QUEUED))
    return countdown_s


def handed_off(session: Session, attempt_id: int, *, due: datetime) -> None:
    """Record that the attempt's dial task was sent again, due at ``due`` (the outbox's
    record: a dial that waits that long is not taken for lost)."""
    session.execute(statements.HANDED_OFF, {"ids": [attempt_id], "at": due})


# -- the end -------------------------------------------------------------------------------


def end(
    session: Session,
    attempt_id: int,
    outcome: Outcome,
    *,
    now: datetime,
    error_code: str | None = None,
    error_message: str | None = None,
    no_call: bool = False,
    connect_s: float | None = DEFAULT_STREAM_CONNECT_S,
    greets_first: bool = False,
) -> Ended | None:
    """End an attempt with ``outcome`` (first end wins) and settle its recipient.

    ``no_call``: the provider refused the call (none existed), so the number's contact
    history does not count it. ``connect_s``: how soon after the answer the assistant's
    stream must have started for a call answered by a person not to count as abandoned."""
    attempt = _attempt(session, attempt_id)
    if attempt is None or attempt.status is AttemptStatus.ENDED:
        return None
    if no_call:
        contacts.forget(session, attempt_id)
    attempt.status = AttemptStatus.ENDED
    attempt.outcome = outcome
    attempt.ended_at = now
    if error_code is not None:
        attempt.error_code = error_code[:30]
        attempt.error_message = error_message
    about = health.EndFacts(
        attempt.campaign_id,
        attempt.from_number,
        outcome,
        attempt.provider_call_id is not None,
        attempt.error_code,
        attempt.answered_by,
        attempt.answered_at,
        attempt.stream_started_at,
        now,
    )
    attempt.abandoned, checks = health.record_end(
        session, about, connect_s=connect_s, greets_first=greets_first
    )
    return _ended(session, attempt, *_settle(session, attempt, now=now), checks=checks)


def progress(
    session: Session,
    row: AttemptRow,
    changes: dict[str, Any],
    *,
    now: datetime,
    connect_s: float | None = DEFAULT_STREAM_CONNECT_S,
    greets_first: bool = False,
) -> Ended | None:
    """Write what a provider event changed of the attempt ``row`` (read, and locked, in this
    transaction); when it ended the attempt (``changes`` has its outcome), count it in the
    health tallies (deciding whether it was abandoned: see :func:`end`), settle the
    recipient and return the end."""
    outcome = changes.get("outcome")
    checks = None
    if outcome is not None:
        about = health.EndFacts(
            row.campaign_id,
            row.from_number,
            outcome,
            (changes.get("provider_call_id") or row.provider_call_id) is not None,
            changes.get("error_code"),
            changes.get("answered_by", row.answered_by),
            changes.get("answered_at", row.answered_at),
            changes.get("stream_started_at", row.stream_started_at),
            changes.get("ended_at", now),
        )
        abandoned, checks = health.record_end(
            session, about, connect_s=connect_s, greets_first=greets_first
        )
        if abandoned is not None:
            changes["abandoned"] = abandoned
    if changes:
        session.execute(statements.ATTEMPT_UPDATE, {"b_attempt_id": row.id, **changes})
    if outcome is None:
        return None
    ending = _Ending(row.id, row.campaign_id, row.recipient_id, row.from_number, outcome)
    return _ended(session, ending, *_settle(session, ending, now=now), checks=checks)


# -- campaign actions (bulk) ---------------------------------------------------------------


def end_unreached(
    session: Session, campaign_id: str, status: RecipientStatus, reason: str, *, now: datetime
) -> int:
    """End every recipient not yet on a call (pending, due to retry, or queued for a worker).

    Queued attempts that no worker has started end as ``canceled`` here; a dial task that
    arrives later finds its attempt ended and does nothing but free its slot. Calls in flight
    finish; their recipients end when the call does. Returns how many recipients ended.
    """
    unreached = [RecipientStatus.PENDING, RecipientStatus.WAITING_RETRY, RecipientStatus.QUEUED]
    timeline.note_bulk(session, campaign_id, unreached, status.value, reason, now=now)
    session.execute(
        sa.update(CallAttempt)
        .where(CallAttempt.campaign_id == campaign_id, CallAttempt.status == AttemptStatus.QUEUED)
        .values(status=AttemptStatus.ENDED, outcome=Outcome.CANCELED, ended_at=now)
    )
    result = session.execute(
        sa.update(Recipient)
        .where(
            Recipient.campaign_id == campaign_id,
            Recipient.status.in_(unreached),
        )
        .values(status=status, reason=reason, updated_at=now)
    )
    counters.recount(session, campaign_id)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


#: The reason a recipient ends with when its number opts out (``suppressed``).
OPTED_OUT = "opted-out"
#: Recipients an opt-out ends: not yet on a call.
_UNREACHED = (RecipientStatus.PENDING, RecipientStatus.WAITING_RETRY, RecipientStatus.QUEUED)


@dataclass(frozen=True, slots=True)
class OptedOut:
    """What an opt-out of a number ended in its tenant's campaigns."""

    recipients: int
    attempts_canceled: int


def opt_out(session: Session, tenant_id: str, number: str, *, now: datetime) -> OptedOut:
    """End every recipient of ``number`` in the tenant's campaigns not yet on a call
    (``suppressed``, :data:`OPTED_OUT`), and cancel its queued attempts; calls in flight end
    on their own. Run in the transaction that puts the number on the do-not-call list.

    No call starts once this commits. On PostgreSQL the rows are locked in the dial path's
    order, attempt before recipient (:mod:`dialer.calls.placing`), so nothing waits in a
    circle:

    1. The number's queued attempts, waiting for a dial that holds one: that dial commits
       first (its call was starting: it is left to end) or finds its attempt ended.
    2. Its recipients not on a call, waiting for a claim or a dial that holds one.
    3. Its queued attempts again, skipping any row held: those a dispatch committed while
       step 2 waited. An attempt held here belongs to a dial that read the list before this
       commit; its claim locks the recipient, finds it ended and ends the attempt unstarted
       (:func:`claim`), and a later dial of it reads the list again.

    SQLite runs one writer at a time: the whole transaction is one step.
    """
    postgres = is_postgres(session)
    campaigns = sa.select(Campaign.id).where(Campaign.tenant_id == tenant_id)
    queued = (
        sa.select(CallAttempt)
        .where(
            CallAttempt.campaign_id.in_(campaigns),
            CallAttempt.to_number == number,
            CallAttempt.status == AttemptStatus.QUEUED,
        )
        .order_by(CallAttempt.id)
    )
    held: dict[int, CallAttempt] = {}
    for attempt in session.scalars(queued.with_for_update() if postgres else queued):
        held[attempt.id] = attempt
    unreached = (
        sa.select(Recipient)
        .where(
            Recipient.campaign_id.in_(campaigns),
            Recipient.phone_number == number,
            Recipient.status.in_(_UNREACHED),
        )
        .order_by(Recipient.id)
    )
    recipients = list(session.scalars(unreached.with_for_update() if postgres else unreached))
    if postgres and any(r.status is RecipientStatus.QUEUED for r in recipients):
        later = queued.where(CallAttempt.id.not_in(held)) if held else queued
        for attempt in session.scalars(later.with_for_update(skip_locked=True)):
            held[attempt.id] = attempt
    canceled: set[int] = set()
    for attempt in held.values():
        if attempt.status is not AttemptStatus.QUEUED:
            continue
        canceled.add(attempt.recipient_id)
        attempt.status = AttemptStatus.ENDED
        attempt.outcome = Outcome.CANCELED
        attempt.ended_at = now
        attempt.error_code = NOT_DIALED
        counters.bump(session, attempt.campaign_id, {counters.outcome_key(Outcome.CANCELED): 1})
    for recipient in recipients:
        if recipient.id in canceled:
            recipient.run_attempts = max(0, recipient.run_attempts - 1)
        timeline.note(
            session, recipient, RecipientStatus.SUPPRESSED.value, at=now, reason=OPTED_OUT
        )
        _move(session, recipient, RecipientStatus.SUPPRESSED, now=now, reason=OPTED_OUT)
    session.flush()
    return OptedOut(len(recipients), len(canceled))


def reset_for_run(session: Session, campaign_id: str, *, now: datetime) -> None:
    """A new run of a campaign: everyone not still on a call is due again, from scratch."""
    again = [
        s for s in RecipientStatus if s not in (RecipientStatus.QUEUED, RecipientStatus.IN_FLIGHT)
    ]
    timeline.note_bulk(session, campaign_id, again, timeline.Kind.RESET, timeline.NEW_RUN, now=now)
    session.execute(
        sa.update(Recipient)
        .where(
            Recipient.campaign_id == campaign_id,
            Recipient.status.not_in([RecipientStatus.QUEUED, RecipientStatus.IN_FLIGHT]),
        )
        .values(
            status=RecipientStatus.PENDING,
            reason=None,
            run_attempts=0,
            next_attempt_at=now,
            updated_at=now,
        )
    )
    counters.recount(session, campaign_id)


# -- helpers -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ending:
    """What settling an ended attempt reads of it (an ORM attempt has the same attributes)."""

    id: int
    campaign_id: str
    recipient_id: int
    from_number: str | None
    outcome: Outcome


def _settle(
    session: Session, attempt: CallAttempt | _Ending, *, now: datetime
) -> tuple[Campaign | None, bool]:
    """Count the outcome and move the recipient on (retry policy, windows, campaign state);
    returns the campaign when it was loaded (the session holds it weakly: the caller keeps it
    for :func:`_ended`), and whether the recipient is due again (a retry)."""
    outcome = attempt.outcome
    assert outcome is not None
    counters.bump(session, attempt.campaign_id, {counters.outcome_key(outcome): 1})
    if outcome is Outcome.HUMAN:
        contacts.answered(session, attempt.id, now)  # the quiet days after an answer
    recipient = _recipient(session, attempt.recipient_id)
    if recipient.status not in (RecipientStatus.IN_FLIGHT, RecipientStatus.QUEUED):
        timeline.note(
            session,
            recipient,
            timeline.Kind.OUTCOME,
            at=now,
            reason=outcome,
            attempt_id=attempt.id,
            facts={"next": recipient.status.value},
        )
        recipient.last_outcome = outcome
        return None, False  # already ended by a stop or window close while the call was live
    campaign = session.get_one(Campaign, attempt.campaign_id, options=[statements.END_COLUMNS])
    recipient.last_outcome = outcome  # after the load, whose autoflush would write it alone
    window = facts.window_of(campaign)
    settled = after_outcome(
        outcome,
        policy=RetryPolicy.model_validate(campaign.retry_policy),
        attempts_so_far=recipient.run_attempts,
        window=facts.recipient_window_of(window, recipient),
        campaign=facts.campaign_facts(campaign, window),
        now=now,
        jitter_seed=str(recipient.id),
    )
    if settled.retry_at is not None:
        recipient.next_attempt_at = settled.retry_at
    timeline.note(
        session,
        recipient,
        timeline.Kind.OUTCOME,
        at=now,
        reason=outcome,
        until=settled.retry_at,
        attempt_id=attempt.id,
        facts={"attempt_number": recipient.run_attempts, "next": settled.status.value},
    )
    if settled.status in TERMINAL_RECIPIENT:
        timeline.note(
            session,
            recipient,
            settled.status.value,
            at=now,
            reason=settled.reason,
            attempt_id=attempt.id,
        )
    _move(session, recipient, settled.status, now=now, reason=settled.reason)
    return campaign, settled.retry_at is not None


def _ended(
    session: Session,
    attempt: CallAttempt | _Ending,
    campaign: Campaign | None = None,
    retry: bool = False,
    *,
    checks: health.HealthChecks | None = None,
) -> Ended:
    """The record of ``attempt``'s end; pass its campaign when this transaction loaded it,
    ``retry`` when the end made its recipient due again, and the health ``checks`` it
    calls for."""
    assert attempt.outcome is not None
    if campaign is None:
        campaign = session.get_one(Campaign, attempt.campaign_id, options=[statements.END_COLUMNS])
    scope = SlotScope(attempt.campaign_id, campaign.tenant_id, attempt.from_number)
    return Ended(attempt.id, attempt.campaign_id, attempt.outcome, scope, retry, checks)


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


def _attempt(session: Session, attempt_id: int) -> CallAttempt | None:
    """The attempt, its row locked (PostgreSQL) for this transaction."""
    stmt = statements.ATTEMPT_LOCK if is_postgres(session) else statements.ATTEMPT_READ
    attempt: CallAttempt | None = session.scalars(stmt, {"attempt_id": attempt_id}).one_or_none()
    return attempt


def _recipient(session: Session, recipient_id: int) -> Recipient:
    """The recipient, its row locked (PostgreSQL) for this transaction."""
    stmt = statements.RECIPIENT_LOCK if is_postgres(session) else statements.RECIPIENT_READ
    recipient: Recipient = session.scalars(stmt, {"recipient_id": recipient_id}).one()
    return recipient
