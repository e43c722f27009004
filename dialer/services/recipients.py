"""Adding recipients to a campaign: normalise, dedupe, screen against do-not-call, count."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.calls import states, timeline
from dialer.db.bulk import insert_ignoring_conflicts
from dialer.db.models import Campaign, Recipient, RecipientListEntry, Suppression
from dialer.errors import FieldErrors, InvalidPhoneNumber
from dialer.phone import to_e164
from dialer.policy.attempt_state import RecipientStatus
from dialer.policy.places import parse_region
from dialer.policy.screen import ScreenReason
from dialer.services import consent, greeting
from dialer.services.consent import ConsentLike

#: Rows written per INSERT statement.
CHUNK_ROWS = 2_000

INVALID_NUMBER = "invalid-number"
INVALID_REGION = "invalid-region"
MISSING_VARIABLE = "missing-template-variable"
DUPLICATE = "duplicate"
#: A suppressed number's reason: the one the screen gives.
SUPPRESSED = ScreenReason.SUPPRESSED.value


class RecipientLike(Protocol):
    @property
    def phone_number(self) -> str: ...
    @property
    def metadata(self) -> Mapping[str, Any]: ...
    @property
    def assistant_overrides(self) -> Mapping[str, Any]: ...
    @property
    def time_zone(self) -> str | None: ...
    @property
    def region(self) -> str | None: ...


def consent_of(row: RecipientLike) -> ConsentLike | None:
    """The consent a row carries (``consent``: the API's recipients, list rows), if any. Read
    by name so that rows without the attribute (older callers, tests' rows) carry none."""
    given: ConsentLike | None = getattr(row, "consent", None)
    return given


@dataclass(frozen=True, slots=True)
class Rejection:
    row: int
    phone_number: str | None
    reason: str


@dataclass(slots=True)
class BatchResult:
    accepted: int = 0
    rejected: list[Rejection] = field(default_factory=list)


def normalise(
    rows: Sequence[RecipientLike], *, field_prefix: str
) -> list[str | InvalidPhoneNumber]:
    """E.164 of each row, or the error saying why it is not a number we can dial."""
    out: list[str | InvalidPhoneNumber] = []
    for index, row in enumerate(rows):
        try:
            out.append(to_e164(row.phone_number, field=f"{field_prefix}{index}.phone_number"))
        except InvalidPhoneNumber as exc:
            out.append(exc)
    return out


def check_batch(
    rows: Sequence[RecipientLike],
    template: str | None,
    errors: FieldErrors,
    field_prefix: str = "recipients.",
) -> None:
    """Add to ``errors`` every row of an inline batch that a strict add would refuse: a number
    that cannot be dialed, metadata lacking a variable of ``template``."""
    _check_rows(rows, normalise(rows, field_prefix=field_prefix), template, errors, field_prefix)


def _check_rows(
    rows: Sequence[RecipientLike],
    numbers: Sequence[str | InvalidPhoneNumber],
    template: str | None,
    errors: FieldErrors,
    field_prefix: str,
) -> None:
    for index, (row, number) in enumerate(zip(rows, numbers, strict=True)):
        if isinstance(number, InvalidPhoneNumber):
            errors.errors.extend(number.errors)
        lacking = greeting.missing(template, row.metadata)
        if lacking:
            errors.add(
                f"{field_prefix}{index}.metadata",
                f"lacks {', '.join(lacking)}, used by opening_message_template",
            )


def suppressed_among(session: Session, tenant_id: str, numbers: Sequence[str]) -> set[str]:
    if not numbers:
        return set()
    found = session.scalars(
        sa.select(Suppression.phone_number).where(
            Suppression.tenant_id == tenant_id, Suppression.phone_number.in_(numbers)
        )
    )
    return set(found)


def add_batch(
    session: Session,
    campaign: Campaign,
    rows: Sequence[RecipientLike],
    *,
    now: datetime,
    caller_number_id: str | None = None,
    strict: bool = False,
    field_prefix: str = "recipients.",
) -> BatchResult:
    """Append ``rows`` to ``campaign``; each row is accepted or rejected with its reason.

    Invalid numbers, numbers already in the campaign (or twice in the batch) and numbers on
    the tenant's do-not-call list are rejected and not stored. With ``strict`` an invalid
    number raises :class:`InvalidPhoneNumber` instead (inline recipients of a create or PATCH,
    where bad input must change nothing).
    """
    result = BatchResult()
    numbers = normalise(rows, field_prefix=field_prefix)
    if strict:
        errors = FieldErrors()
        _check_rows(rows, numbers, campaign.opening_message_template, errors, field_prefix)
        errors.raise_any()
    for start in range(0, len(rows), CHUNK_ROWS):
        _add_chunk(
            session,
            campaign,
            rows[start : start + CHUNK_ROWS],
            numbers[start : start + CHUNK_ROWS],
            offset=start,
            now=now,
            caller_number_id=caller_number_id,
            result=result,
        )
    states.recipients_added(session, campaign.id, result.accepted)
    given = [
        (number, given)
        for row, number in zip(rows, numbers, strict=True)
        if (given := consent_of(row)) is not None and isinstance(number, str)
    ]
    consent.record_many(session, campaign.tenant_id, given, now=now)
    return result


def _add_chunk(
    session: Session,
    campaign: Campaign,
    rows: Sequence[RecipientLike],
    numbers: Sequence[str | InvalidPhoneNumber],
    *,
    offset: int,
    now: datetime,
    caller_number_id: str | None,
    result: BatchResult,
) -> None:
    valid = [n for n in numbers if isinstance(n, str)]
    blocked = suppressed_among(session, campaign.tenant_id, valid)
    seen: set[str] = set()
    candidates: list[tuple[int, str]] = []
    values: list[dict[str, Any]] = []
    for index, (row, number) in enumerate(zip(rows, numbers, strict=True), start=offset):
        if isinstance(number, InvalidPhoneNumber):
            result.rejected.append(
                Rejection(index, row.phone_number, f"{INVALID_NUMBER}: {number.reason}")
            )
        elif (bad_region := _region_problem(row.region)) is not None:
            result.rejected.append(Rejection(index, number, f"{INVALID_REGION}: {bad_region}"))
        elif lacking := greeting.missing(campaign.opening_message_template, row.metadata):
            result.rejected.append(
                Rejection(index, number, f"{MISSING_VARIABLE}: {', '.join(lacking)}")
            )
        elif number in blocked:
            result.rejected.append(Rejection(index, number, SUPPRESSED))
        elif number in seen:
            result.rejected.append(Rejection(index, number, DUPLICATE))
        else:
            seen.add(number)
            candidates.append((index, number))
            values.append(
                {
                    "campaign_id": campaign.id,
                    "caller_number_id": caller_number_id,
                    "phone_number": number,
                    "metadata": dict(row.metadata),
                    "assistant_overrides": dict(row.assistant_overrides),
                    "time_zone": row.time_zone,
                    "region": None if row.region is None else str(parse_region(row.region)),
                    "status": RecipientStatus.PENDING.value,
                    "attempt_count": 0,
                    "run_attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    if not values:
        return
    table = Recipient.__table__
    stmt = insert_ignoring_conflicts(session, table).returning(table.c.phone_number)  # type: ignore[arg-type]
    inserted = set(session.scalars(stmt, values))
    for index, number in candidates:
        if number in inserted:
            result.accepted += 1
        else:
            result.rejected.append(Rejection(index, number, DUPLICATE))
    result.rejected.sort(key=lambda r: r.row)


def _region_problem(region: str | None) -> str | None:
    """Why ``region`` is no region (a CSV's column is read as given), or None."""
    if region is None:
        return None
    try:
        parse_region(region)
    except ValueError as exc:
        return str(exc)
    return None


def attach_list(session: Session, campaign: Campaign, list_id: str, *, now: datetime) -> int:
    """Copy a recipient list into the campaign in one statement; returns the rows added.

    Numbers already in the campaign are skipped; numbers on the do-not-call list are stored
    as ``suppressed`` (counted and visible, never dialed). Runs inside the database, so a
    list of a million rows never passes through Python.
    """
    source = _list_rows(campaign, list_id, now)
    table = Recipient.__table__
    before = _count(session, campaign.id)
    session.execute(
        insert_ignoring_conflicts(session, table).from_select(  # type: ignore[arg-type]
            [
                "campaign_id",
                "phone_number",
                "metadata",
                "assistant_overrides",
                "time_zone",
                "region",
                "status",
                "reason",
                "attempt_count",
                "run_attempts",
                "next_attempt_at",
                "created_at",
                "updated_at",
            ],
            source,
        )
    )
    # The numbers stored as suppressed start their timelines with that decision.
    timeline.note_bulk(
        session,
        campaign.id,
        [RecipientStatus.SUPPRESSED],
        RecipientStatus.SUPPRESSED.value,
        SUPPRESSED,
        now=now,
        created_at=now,
    )
    states.recount(session, campaign.id)
    return _count(session, campaign.id) - before


def _list_rows(campaign: Campaign, list_id: str, now: datetime) -> sa.Select[Any]:
    """The entries of a list as new recipients of ``campaign`` (suppressed ones marked)."""
    entries = RecipientListEntry.__table__
    blocked = (
        sa.select(Suppression.id)
        .where(
            Suppression.tenant_id == campaign.tenant_id,
            Suppression.phone_number == entries.c.phone_number,
        )
        .exists()
    )
    status = sa.case(
        (blocked, sa.literal(RecipientStatus.SUPPRESSED.value)),
        else_=sa.literal(RecipientStatus.PENDING.value),
    )
    reason = sa.case((blocked, sa.literal(SUPPRESSED)), else_=sa.null())
    return (
        sa.select(
            sa.literal(campaign.id),
            entries.c.phone_number,
            entries.c.metadata,
            entries.c.assistant_overrides,
            entries.c.time_zone,
            entries.c.region,
            status,
            reason,
            sa.literal(0),
            sa.literal(0),
            sa.literal(now, type_=Recipient.__table__.c.next_attempt_at.type),
            sa.literal(now, type_=Recipient.__table__.c.created_at.type),
            sa.literal(now, type_=Recipient.__table__.c.updated_at.type),
        )
        .where(entries.c.list_id == list_id)
        .order_by(entries.c.id)
    )


def _count(session: Session, campaign_id: str) -> int:
    return int(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Recipient)
            .where(Recipient.campaign_id == campaign_id)
        )
        or 0
    )
