"""Each recipient's timeline: the decisions that moved it, with their reasons and facts.

Whatever decided (the screen's :class:`~dialer.policy.screen.Deferred` or
:class:`~dialer.policy.screen.Terminal` with its reason string, a dial, an attempt's outcome
and the retry it scheduled, a stop), :mod:`dialer.calls.states` notes it here as it writes the
move, so a new screening rule's decisions land in the timeline with no work of its own.

Notes wait in the session (``session.info``) and are written as the transaction commits, all
of them in one executemany: a claim round that turns hundreds of recipients away writes one
statement, not one per recipient. A rollback drops them with the moves they describe.

Only decisions that change something are noted: a deferral the recipient already carries (the
same reason and due time in ``recipients.reason`` / ``next_attempt_at``) is not, so a tick
over recipients outside their hours writes nothing until their reason or due time changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from dialer.db.models import Campaign, ConsentRecord, Recipient, RecipientDecision
from dialer.policy.attempt_state import RecipientStatus
from dialer.policy.calling_hours import NotCallable, legal_hours_for
from dialer.policy.legal_hours import explain
from dialer.policy.screen import Decision, Deferred, Terminal

_PENDING = "dialer.timeline"
_TABLE = cast(sa.Table, RecipientDecision.__table__)


class Kind(StrEnum):
    """What a timeline row records; a terminal state reached is recorded under its own
    status (``skipped``, ``suppressed``, ``canceled``, ``done``, ``exhausted``)."""

    DEFERRED = "deferred"
    DIALED = "dialed"
    #: An attempt ended: ``reason`` is its outcome, ``until`` the retry it scheduled, if any.
    OUTCOME = "outcome"
    #: The provider refused the call retryably: the attempt waits in the queue until ``until``.
    REQUEUED = "requeued"
    #: A new run made the recipient due again from scratch.
    RESET = "reset"


#: ``reason`` of a :attr:`Kind.RESET` row.
NEW_RUN = "new-run"


def note(
    session: Session,
    recipient: Recipient,
    kind: str,
    *,
    at: datetime,
    reason: str | None = None,
    until: datetime | None = None,
    attempt_id: int | None = None,
    facts: dict[str, Any] | None = None,
) -> None:
    """Note one decision about ``recipient``; written when the transaction commits."""
    rows: list[dict[str, Any]] = session.info.setdefault(_PENDING, [])
    rows.append(
        {
            "recipient_id": recipient.id,
            "campaign_id": recipient.campaign_id,
            "at": at,
            "kind": str(kind),
            "reason": None if reason is None else str(reason),
            "until": until,
            "attempt_id": attempt_id,
            "facts": facts or {},
        }
    )


def note_decision(
    session: Session,
    recipient: Recipient,
    decision: Decision,
    *,
    at: datetime,
    attempt_id: int | None = None,
) -> None:
    """Note a screen's decision not to call (whatever rule gave it, with its reason)."""
    if isinstance(decision, Deferred):
        note(
            session,
            recipient,
            Kind.DEFERRED,
            at=at,
            reason=decision.reason,
            until=decision.until,
            attempt_id=attempt_id,
        )
    elif isinstance(decision, Terminal):
        note(
            session,
            recipient,
            decision.status.value,
            at=at,
            reason=decision.reason,
            attempt_id=attempt_id,
        )


def changes(recipient: Recipient, decision: Deferred) -> bool:
    """Whether a deferral changes what the recipient carries (its reason or due time)."""
    if decision.until is None:
        return False  # nothing is stored: the recipient stays due as it was
    return recipient.reason != decision.reason or recipient.next_attempt_at != decision.until


def dial_facts(recipient: Recipient, now: datetime) -> dict[str, Any]:
    """What a dial was checked against: every zone the number may be in with its local time
    at the dial, the rule of its place applied there and whether the day was a holiday
    (:func:`~dialer.policy.legal_hours.explain`), the rules file's version, and the consent
    record used (filled at the commit)."""
    legal = legal_hours_for(recipient.phone_number, recipient.time_zone, region=recipient.region)
    if isinstance(legal, NotCallable):
        return {"zones": [], "rules_version": None, "consent": None}
    checked = explain(legal, now)
    return {
        "zones": checked["checks"],
        "rules_version": checked["rules_version"],
        # Filled as the transaction commits, for all of its dials at once (_consents_used).
        "consent": None,
    }


def note_dialed(session: Session, recipient: Recipient, attempt_id: int, now: datetime) -> None:
    note(
        session,
        recipient,
        Kind.DIALED,
        at=now,
        attempt_id=attempt_id,
        facts={**dial_facts(recipient, now), "number": recipient.phone_number},
    )


def note_bulk(
    session: Session,
    campaign_id: str,
    statuses: Sequence[RecipientStatus],
    kind: str,
    reason: str | None,
    *,
    now: datetime,
    created_at: datetime | None = None,
) -> None:
    """Note one decision for every recipient of the campaign in ``statuses`` (optionally only
    those created at ``created_at``), in one INSERT ... SELECT: for the moves made in bulk (a
    stop, a window closing, a new run, a list attached). Run it before the move itself."""
    recipients = Recipient.__table__
    source = sa.select(
        recipients.c.id,
        recipients.c.campaign_id,
        sa.literal(now, type_=_TABLE.c.at.type),
        sa.literal(str(kind), type_=_TABLE.c.kind.type),
        sa.literal(reason, type_=_TABLE.c.reason.type),
        sa.literal({}, type_=_TABLE.c.facts.type),
    ).where(
        recipients.c.campaign_id == campaign_id,
        recipients.c.status.in_(list(statuses)),
    )
    if created_at is not None:
        source = source.where(recipients.c.created_at == created_at)
    write(session)  # keep the timeline in order: what was noted before comes first
    session.execute(
        _TABLE.insert().from_select(
            ["recipient_id", "campaign_id", "at", "kind", "reason", "facts"], source
        )
    )


def write(session: Session) -> None:
    """Write the decisions noted in this transaction, in one statement."""
    rows = session.info.pop(_PENDING, None)
    if rows:
        _consents_used(session, [row for row in rows if row["kind"] == Kind.DIALED])
        session.execute(_TABLE.insert(), rows)


def _consents_used(session: Session, dials: list[dict[str, Any]]) -> None:
    """Fill each dial's ``facts["consent"]``: the consent record the call relied on (its
    number's latest captured at or before the dial, for the campaign's tenant), or None. One
    query for all the dials of a transaction."""
    if not dials:
        return
    numbers = {row["facts"]["number"] for row in dials}
    campaigns = {row["campaign_id"] for row in dials}
    found = session.execute(
        sa.select(Campaign.id, ConsentRecord)
        .join(ConsentRecord, ConsentRecord.tenant_id == Campaign.tenant_id)
        .where(
            Campaign.id.in_(campaigns),
            ConsentRecord.phone_number.in_(numbers),
            ConsentRecord.captured_at <= max(row["at"] for row in dials),
        )
        .order_by(ConsentRecord.captured_at.desc(), ConsentRecord.id.desc())
    ).all()
    for row in dials:
        number = row["facts"].pop("number")
        used = next(
            (
                record
                for campaign_id, record in found
                if campaign_id == row["campaign_id"]
                and record.phone_number == number
                and record.captured_at <= row["at"]
            ),
            None,
        )
        row["facts"]["consent"] = None if used is None else _consent_facts(used)


def _consent_facts(record: ConsentRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "basis": record.basis,
        "captured_at": record.captured_at.isoformat(),
        "source": record.source,
        "evidence": record.evidence,
    }


@event.listens_for(Session, "before_commit")
def _write_on_commit(session: Session) -> None:
    write(session)


@event.listens_for(Session, "after_soft_rollback")
def _drop_on_rollback(session: Session, previous: SessionTransaction) -> None:
    if previous.parent is None:
        session.info.pop(_PENDING, None)
