"""Taking in what the provider reports: callbacks, and its record when we ask for it.

Callbacks arrive late, twice and out of order. Each is applied at most once (a repeat of the
same call, kind and sequence is dropped by the event log's unique key), only ever moves an
attempt forward, and the first end wins (:func:`~dialer.policy.attempt_state.advance`). The
event log insert and the attempt's update commit together, before the webhook answers, so a
provider retry after a lost answer is a harmless repeat.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from dialer.calls import health, statements, states
from dialer.calls.ending import Ender
from dialer.calls.jobs import AttemptRow, Ended, Freed
from dialer.db.bulk import insert_ignoring_conflicts_on, is_postgres
from dialer.db.models import CallAttempt, CallEvent, Campaign
from dialer.errors import ProviderError
from dialer.observability import context, metrics
from dialer.policy.attempt_state import AttemptState, AttemptStatus, Outcome, advance
from dialer.policy.health import (
    CARRIER_BLOCK_ERRORS,
    DEFAULT_STREAM_CONNECT_S,
    REJECTION_SIP_CODES,
)
from dialer.telephony.base import CallInfo, CallStatus, TelephonyProvider
from dialer.telephony.events import (
    MACHINE_ANSWERS,
    STREAM_STARTED,
    ProviderEvent,
    attempt_status_for,
    outcome_for,
)

log = logging.getLogger(__name__)

#: Sequence stored for AMD callbacks, which have none: one verdict per call.
AMD_SEQUENCE = -1
#: Sequences stored for the media stream's callbacks, which have none: one of each kind.
STREAM_SEQUENCES = {"stream-started": -2, "stream-stopped": -3, "stream-error": -4}
#: An attempt id no row has (ids start at 1): what :meth:`Ingestor.warm` works on.
NO_ATTEMPT = 0
_WARM_EVENT = ProviderEvent(kind="status", provider_call_id="", call_status=CallStatus.INITIATED)
_EVENTS = cast(sa.Table, CallEvent.__table__)


@dataclass(frozen=True, slots=True)
class Ingested:
    """What an event did: nothing (duplicate, stale), a progress step, or the end."""

    applied: bool
    ended: Ended | None = None
    #: Nothing applied: a completed call with no AMD verdict yet; ask the provider, then
    #: ingest again with its answer (see ``ask_verdict``).
    needs_verdict: bool = False
    #: Nothing applied: no such attempt, or the event names another call than the attempt's.
    unknown: bool = False


class Ingestor:
    """Applies provider events to attempts, and frees the slots of the calls they end."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        provider: TelephonyProvider,
        ender: Ender,
        clock: Callable[[], datetime],
        *,
        unknown_is_machine: bool = False,
        connect_s: float | None = DEFAULT_STREAM_CONNECT_S,
        greets_first: bool = False,
    ) -> None:
        """``unknown_is_machine`` counts an AMD verdict of ``unknown`` as voicemail;
        ``connect_s``: how soon after a person answers the assistant's stream must start
        (later, or never: the call was abandoned); ``greets_first``: the answer says an
        opening message before the stream (:class:`~dialer.policy.health.HealthLimits`)."""
        self._sessions = sessions
        self._provider = provider
        self._ender = ender
        self._clock = clock
        self._unknown_is_machine = unknown_is_machine
        self._connect_s = connect_s
        self._greets_first = greets_first

    def ingest(self, attempt_id: int, event: ProviderEvent) -> Freed | None:
        """Apply one callback (the webhooks' and the simulator's entry point).

        A completed call that comes with no AMD verdict and finds none stored gets the
        provider's record's (one more lookup): with async AMD the verdict has its own callback,
        which may come after ``completed``, and the first end wins. A machine that answered a
        campaign with no voicemail message to leave is hung up on at once.
        """
        freed = self.free(self.record(attempt_id, event))
        return self.hang_up_on_machine(attempt_id, event) or freed

    def record(self, attempt_id: int, event: ProviderEvent) -> Ended | None:
        """The database part of :meth:`ingest`, committed: the end it made, if any (its slots
        still held: :meth:`settle` frees them)."""
        result = self._once(attempt_id, event, ask_verdict=True)
        if result.needs_verdict:
            event = replace(event, answered_by=self._verdict(attempt_id, event))
            result = self._once(attempt_id, event, ask_verdict=False)
        if result.unknown:
            metrics.callback_rejected(metrics.UNKNOWN_CALL)
        return result.ended

    def free(self, ended: Ended | None) -> Freed | None:
        """What follows :meth:`record` on the slots: free those of the end it made."""
        return None if ended is None else self._ender.free(ended)

    def hang_up_on_machine(self, attempt_id: int, event: ProviderEvent) -> Freed | None:
        """What follows :meth:`record` at the provider: an AMD verdict of a machine, on a
        campaign with no voicemail message, hangs up (and ends the attempt by the answer)."""
        if event.kind == "amd" and event.answered_by in MACHINE_ANSWERS:
            return self._machine_answered(attempt_id, event.provider_call_id)
        return None

    def apply_call_info(self, attempt_id: int, info: CallInfo) -> Freed | None:
        """Apply what the provider's record says of a call (a lookup, not a callback): ends
        the attempt if the call has ended."""
        if not info.status.is_terminal:
            return None
        event = ProviderEvent(
            kind="status",
            provider_call_id=info.provider_call_id,
            call_status=info.status,
            answered_by=info.answered_by,
            duration_s=info.duration_s,
            timestamp=info.ended_at,
        )
        return self._apply(attempt_id, event, ask_verdict=False)

    def warm(self) -> None:
        """Compile the statements a callback starts with (against an attempt that cannot exist)."""
        self._once(NO_ATTEMPT, _WARM_EVENT, ask_verdict=False)

    def _apply(self, attempt_id: int, event: ProviderEvent, *, ask_verdict: bool) -> Freed | None:
        result = self._once(attempt_id, event, ask_verdict=ask_verdict)
        if result.needs_verdict:
            event = replace(event, answered_by=self._verdict(attempt_id, event))
            result = self._once(attempt_id, event, ask_verdict=False)
        return None if result.ended is None else self._ender.free(result.ended)

    def _once(self, attempt_id: int, event: ProviderEvent, *, ask_verdict: bool) -> Ingested:
        with self._sessions() as session, session.begin():
            result = ingest(
                session,
                attempt_id,
                event,
                now=self._clock(),
                unknown_is_machine=self._unknown_is_machine,
                ask_verdict=ask_verdict,
                connect_s=self._connect_s,
                greets_first=self._greets_first,
            )
        if result.ended is not None:
            metrics.call_ended(result.ended.outcome, retry=result.ended.retry)
        return result

    def _verdict(self, attempt_id: int, event: ProviderEvent) -> str | None:
        """The AMD verdict of a completed call that came with none and found none stored."""
        try:
            return self._provider.fetch(event.provider_call_id).answered_by
        except ProviderError as exc:
            log.warning("attempt %s: AMD verdict lookup failed: %s", attempt_id, exc)
            return None

    def _machine_answered(self, attempt_id: int, provider_call_id: str) -> Freed | None:
        """A machine took the call: without a voicemail message to leave, hang up now
        (the verdict came asynchronously, after the call was connected). The provider's
        answer to the hang-up ends the attempt, without waiting for the call's last callback
        (which may never come)."""
        with self._sessions() as session:
            message = session.scalar(
                sa.select(Campaign.voicemail_message)
                .join(CallAttempt, CallAttempt.campaign_id == Campaign.id)
                .where(CallAttempt.id == attempt_id)
            )
        if message:
            return None
        try:
            info = self._provider.hang_up(provider_call_id)
        except ProviderError as exc:
            log.warning("attempt %s: hang-up on voicemail failed: %s", attempt_id, exc)
            return None
        return None if info is None else self.apply_call_info(attempt_id, info)


def ingest(
    session: Session,
    attempt_id: int,
    event: ProviderEvent,
    *,
    now: datetime,
    unknown_is_machine: bool = False,
    ask_verdict: bool = False,
    connect_s: float | None = DEFAULT_STREAM_CONNECT_S,
    greets_first: bool = False,
) -> Ingested:
    """Apply one provider event in the caller's transaction: deduplicated, forward-only, first
    end wins.

    With ``ask_verdict``, a ``completed`` status that neither carries an AMD verdict nor finds
    one stored changes nothing and says ``needs_verdict`` (the caller asks the provider).
    """
    stmt = statements.INGEST_LOCK if is_postgres(session) else statements.INGEST_READ
    found = session.execute(stmt, {"attempt_id": attempt_id}).one_or_none()
    if found is None:
        return Ingested(False, unknown=True)
    row = AttemptRow(*found)
    context.add(campaign_id=row.campaign_id, recipient_id=row.recipient_id, attempt_id=row.id)
    changes: dict[str, Any] = {}
    if event.kind == "stream":
        result = _stream(session, row, event, changes, now, connect_s, greets_first)
    else:
        result = _decide(session, row, event, changes, now, unknown_is_machine, ask_verdict)
    ended = states.progress(
        session, row, changes, now=now, connect_s=connect_s, greets_first=greets_first
    )
    return result if ended is None else Ingested(True, ended)


def _decide(
    session: Session,
    row: AttemptRow,
    event: ProviderEvent,
    changes: dict[str, Any],
    now: datetime,
    unknown_is_machine: bool,
    ask_verdict: bool,
) -> Ingested:
    """What ``event`` does to the attempt ``row``: fills ``changes`` (the columns to write;
    an end's include its outcome) and says whether anything applied."""
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
        return Ingested(False, unknown=True)
    if (
        ask_verdict
        and event.call_status is CallStatus.COMPLETED
        and event.answered_by is None
        and row.answered_by is None
        and row.status is not AttemptStatus.ENDED
    ):
        changes.clear()  # nothing applied: the call id is adopted by the second pass
        return Ingested(False, needs_verdict=True)
    if not _logged(session, row, event, now):
        return Ingested(False)  # a repeat
    verdict = row.answered_by
    if event.answered_by and verdict is None:
        changes["answered_by"] = verdict = event.answered_by
    if event.kind == "amd" or event.call_status is None:
        return Ingested(True)
    return _advance(row, event, verdict, changes, now, unknown_is_machine)


def _stream(
    session: Session,
    row: AttemptRow,
    event: ProviderEvent,
    changes: dict[str, Any],
    now: datetime,
    connect_s: float | None,
    greets_first: bool,
) -> Ingested:
    """A media stream's report: the earliest start is kept (repeats and late copies change
    nothing). A start reported after the call ended may take back its abandoned verdict."""
    if row.provider_call_id is not None and row.provider_call_id != event.provider_call_id:
        log.warning("attempt %s: stream callback for another call; ignored", row.id)
        return Ingested(False, unknown=True)
    if not _logged(session, row, event, now):
        return Ingested(False)  # a repeat
    started = event.timestamp
    if event.stream_event != STREAM_STARTED or started is None:
        return Ingested(True)
    if row.stream_started_at is not None and row.stream_started_at <= started:
        return Ingested(False)
    changes["stream_started_at"] = started
    if row.status is AttemptStatus.ENDED and health.stream_started(
        session,
        campaign_id=row.campaign_id,
        answered_at=row.answered_at,
        abandoned=row.abandoned,
        started_at=started,
        connect_s=connect_s,
        greets_first=greets_first,
    ):
        changes["abandoned"] = False
    return Ingested(True)


def _advance(
    row: AttemptRow,
    event: ProviderEvent,
    verdict: str | None,
    changes: dict[str, Any],
    now: datetime,
    unknown_is_machine: bool,
) -> Ingested:
    """The status step a status event reports, if it moves the attempt forward."""
    assert event.call_status is not None
    if verdict == "unknown" and unknown_is_machine:
        verdict = "machine"
    before = AttemptState(row.status, row.outcome)
    if before.status is AttemptStatus.QUEUED:
        return Ingested(False)  # never for a queued attempt: no call was placed
    after = advance(
        before, attempt_status_for(event.call_status), outcome_for(event.call_status, verdict)
    )
    if after == before:
        return Ingested(False)
    if row.answered_at is None and (
        after.status is AttemptStatus.IN_PROGRESS
        or (after.status is AttemptStatus.ENDED and event.call_status is CallStatus.COMPLETED)
    ):
        changes["answered_at"] = event.timestamp or now
    changes["status"] = after.status
    if after.status is AttemptStatus.ENDED:
        assert after.outcome is not None
        changes["outcome"] = after.outcome
        changes["ended_at"] = event.timestamp or now
        changes["duration_s"] = event.duration_s
        if event.sip_response_code and (
            after.outcome is Outcome.FAILED or event.sip_response_code in REJECTION_SIP_CODES
        ):
            changes["error_code"] = f"sip-{event.sip_response_code}"
        if event.error_code in CARRIER_BLOCK_ERRORS and after.outcome is not Outcome.HUMAN:
            changes["error_code"] = event.error_code  # the carrier blocked the caller number
    return Ingested(True)


def _logged(session: Session, row: AttemptRow, event: ProviderEvent, now: datetime) -> bool:
    """Record ``event`` in the event log; False if it was there already (a repeat). Events
    without a sequence (a provider's record, not a callback) are not logged."""
    if event.kind == "amd":
        sequence: int | None = AMD_SEQUENCE
    elif event.kind == "stream":
        sequence = STREAM_SEQUENCES.get(event.stream_event or "")
    else:
        sequence = event.sequence_number
    if sequence is None:
        return True
    inserted = session.execute(
        _event_insert(is_postgres(session)),
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
    return inserted is not None


@cache
def _event_insert(postgres: bool) -> Any:
    """``INSERT`` of one callback into the log, doing nothing if it is there already."""
    dialect = "postgresql" if postgres else "sqlite"
    return insert_ignoring_conflicts_on(dialect, _EVENTS).returning(_EVENTS.c.id)
