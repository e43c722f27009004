"""Call health tallies, moved as calls end (in the transaction that ends them), and read back
by the checks that pause campaigns and quarantine numbers (:mod:`dialer.calls.guard`).

A call's end adds to two rows at most: its caller number's hour (dials, answered, refused by
a carrier) and, when a person answered, its campaign's day (humans, abandoned). The deltas
are written just before the commit, in key order, as the campaign counters are: the rows are
locked for an instant, never across the rest of the transaction. A check sums 24 hourly or 30
daily rows; nothing scans attempts.

A stream that reports having started after the call's end (callbacks reorder) can take back
an abandoned verdict: :func:`stream_started` moves the attempt's flag and its campaign's
tally back together, once (the flag is the guard).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dialer.db.bulk import is_postgres
from dialer.db.engine import before_commit
from dialer.db.models import Campaign, HealthTally
from dialer.db.models.health import CAMPAIGN_SCOPE, NUMBER_SCOPE
from dialer.policy.attempt_state import Outcome
from dialer.policy.health import (
    AbandonTally,
    NumberTally,
    answered_by_person,
    day_bucket,
    failed_at_carrier,
    hour_bucket,
    is_abandoned,
    is_carrier_rejection,
)

_PENDING = "dialer.health_deltas"
_TALLIES = cast(sa.Table, HealthTally.__table__)
_COLUMNS = ("dials", "answered", "rejected", "humans", "abandoned")
_ANSWERED = frozenset({Outcome.HUMAN, Outcome.VOICEMAIL})


@dataclass(frozen=True, slots=True)
class EndFacts:
    """What health reads of an ended attempt."""

    campaign_id: str
    from_number: str | None
    outcome: Outcome
    #: A call existed at the provider (a dial the carrier saw), not a refusal of the request.
    placed: bool
    error_code: str | None
    answered_by: str | None
    answered_at: datetime | None
    stream_started_at: datetime | None
    ended_at: datetime


@dataclass(frozen=True, slots=True)
class HealthChecks:
    """What to look at once the end commits (:class:`dialer.calls.guard.HealthGuard`)."""

    campaign_id: str
    #: The caller number to judge again (a dial from it nobody answered).
    number: str | None
    #: The call was abandoned: the campaign's rate may have crossed its limit.
    abandoned: bool
    #: The call failed at the carrier: the campaign's recent dials may be mostly failures.
    failed: bool

    @property
    def needed(self) -> bool:
        """Anything to check at all (most ends, answered and connected, need nothing)."""
        return bool(self.number) or self.abandoned or self.failed


def record_end(
    session: Session, facts: EndFacts, *, connect_s: float | None, greets_first: bool = False
) -> tuple[bool | None, HealthChecks | None]:
    """Count an ended call in its number's and campaign's tallies (at its commit).

    Returns the attempt's ``abandoned`` verdict (None when no person answered) and the checks
    to run once the end commits (None for an attempt never placed)."""
    if not facts.placed:
        return None, None
    abandoned: bool | None = None
    if answered_by_person(facts.outcome, facts.answered_by) and facts.answered_at is not None:
        abandoned = is_abandoned(
            facts.outcome,
            facts.answered_by,
            facts.answered_at,
            facts.stream_started_at,
            connect_s=connect_s,
        )
        if abandoned and facts.stream_started_at is not None and greets_first:
            # Late after an opening message said at the answer: the person was not waiting.
            abandoned = not _opens_with_message(session, facts.campaign_id)
        _add(
            session,
            (CAMPAIGN_SCOPE, facts.campaign_id, day_bucket(facts.answered_at)),
            {"humans": 1, "abandoned": int(abandoned)},
        )
    failed = failed_at_carrier(facts.outcome, facts.error_code)
    if facts.from_number:
        _add(
            session,
            (NUMBER_SCOPE, facts.from_number, hour_bucket(facts.ended_at)),
            {
                "dials": 1,
                "answered": int(facts.outcome in _ANSWERED),
                "rejected": int(is_carrier_rejection(facts.error_code)),
            },
        )
    # Only a dial nobody answered can make its number look worse (an answered one lowers
    # the refused share and raises the answer rate): the others need no check.
    answered = facts.outcome in _ANSWERED
    number = None if answered else facts.from_number
    checks = HealthChecks(facts.campaign_id, number, bool(abandoned), failed)
    return abandoned, checks


def stream_started(
    session: Session,
    *,
    campaign_id: str,
    answered_at: datetime | None,
    abandoned: bool | None,
    started_at: datetime,
    connect_s: float | None,
    greets_first: bool = False,
) -> bool:
    """The stream of an attempt that ended abandoned reports a start in time after all: take
    the verdict back (True: the caller writes ``abandoned = false``)."""
    if not abandoned or answered_at is None or connect_s is None:
        return False
    if started_at - answered_at > timedelta(seconds=connect_s) and not (
        greets_first and _opens_with_message(session, campaign_id)
    ):
        return False
    _add(session, (CAMPAIGN_SCOPE, campaign_id, day_bucket(answered_at)), {"abandoned": -1})
    return True


def abandon_tally(session: Session, campaign_id: str, *, now: datetime, days: int) -> AbandonTally:
    """The campaign's calls answered by a person over the last ``days`` days (whole UTC days:
    today counts), and how many were abandoned."""
    since = day_bucket(now) - timedelta(days=days - 1)
    humans, abandoned = session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(HealthTally.humans), 0),
            sa.func.coalesce(sa.func.sum(HealthTally.abandoned), 0),
        ).where(
            HealthTally.scope == CAMPAIGN_SCOPE,
            HealthTally.key == campaign_id,
            HealthTally.bucket_start >= since,
        )
    ).one()
    return AbandonTally(int(humans), int(abandoned))


def abandon_tallies(
    session: Session, campaign_ids: list[str], *, now: datetime, days: int
) -> dict[str, AbandonTally]:
    """:func:`abandon_tally` of several campaigns in one query (response bodies)."""
    since = day_bucket(now) - timedelta(days=days - 1)
    rows = session.execute(
        sa.select(
            HealthTally.key,
            sa.func.sum(HealthTally.humans),
            sa.func.sum(HealthTally.abandoned),
        )
        .where(
            HealthTally.scope == CAMPAIGN_SCOPE,
            HealthTally.key.in_(campaign_ids),
            HealthTally.bucket_start >= since,
        )
        .group_by(HealthTally.key)
    )
    found = {key: AbandonTally(int(h or 0), int(a or 0)) for key, h, a in rows}
    return {cid: found.get(cid, AbandonTally(0, 0)) for cid in campaign_ids}


def number_tally(session: Session, number: str, *, since: datetime) -> NumberTally:
    """The number's dials in the hours from the one ``since`` falls in."""
    dials, answered, rejected = session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(HealthTally.dials), 0),
            sa.func.coalesce(sa.func.sum(HealthTally.answered), 0),
            sa.func.coalesce(sa.func.sum(HealthTally.rejected), 0),
        ).where(
            HealthTally.scope == NUMBER_SCOPE,
            HealthTally.key == number,
            HealthTally.bucket_start >= hour_bucket(since),
        )
    ).one()
    return NumberTally(int(dials), int(answered), int(rejected))


# -- writing the deltas before the commit ----------------------------------------------------

_Key = tuple[str, str, datetime]


def _add(session: Session, key: _Key, deltas: Mapping[str, int]) -> None:
    before_commit(session, _PENDING, _apply_pending)
    pending: dict[_Key, dict[str, int]] = session.info.setdefault(_PENDING, {})
    row = pending.setdefault(key, dict.fromkeys(_COLUMNS, 0))
    for name, delta in deltas.items():
        row[name] += delta


def _apply_pending(session: Session) -> None:
    """Write the gathered deltas, in key order (no two transactions lock rows in opposite
    orders), and forget them."""
    pending: dict[_Key, dict[str, int]] = session.info.pop(_PENDING, {})
    if not pending:
        return
    rows = [
        {"scope": scope, "key": key, "bucket_start": bucket, **deltas}
        for (scope, key, bucket), deltas in sorted(pending.items())
        if any(deltas.values())
    ]
    if rows:
        # One executemany (the rows in key order, one after the other): a round trip, not one
        # per bucket, on a path every call's end takes.
        session.execute(_upsert(is_postgres(session)), rows)


@functools.cache
def _upsert(postgres: bool) -> Any:
    """``INSERT`` of a bucket's deltas, adding them to the bucket's row when it exists."""
    insert = postgresql.insert if postgres else sqlite.insert
    stmt = insert(_TALLIES)
    return stmt.on_conflict_do_update(
        index_elements=["scope", "key", "bucket_start"],
        set_={name: _TALLIES.c[name] + stmt.excluded[name] for name in _COLUMNS},
    )


def _opens_with_message(session: Session, campaign_id: str) -> bool:
    """Whether the campaign's answer says an opening message before the stream (read only
    for the rare call whose stream started late)."""
    found = session.scalar(
        sa.select(Campaign.opening_message_template).where(Campaign.id == campaign_id)
    )
    return bool(found)
