"""Per-campaign live counters, moved in the same transaction as the rows they count.

Why the database and not a Redis hash: a transition and its counter update commit together
or not at all, so a worker killed mid-transaction, a repeated callback or a Redis restart can
never make ``counts`` drift from the rows; and the API reads a campaign's counts with one
indexed query instead of a scan of its recipients. Updates are ``value = value + :delta`` on
rows created with the campaign, taken in name order so concurrent transactions cannot
deadlock on them; a row missing then (a counter named after the campaign was created) is
created by the first transaction that counts on it. :func:`reconcile` recomputes the truth
and repairs (and logs) any drift; :func:`reconcile_some` takes the live campaigns a few at a
time, in rotation.
"""

from __future__ import annotations

import functools
import logging
import random
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from dialer.db.bulk import insert_ignoring_conflicts
from dialer.db.engine import before_commit
from dialer.db.models import CallAttempt, Campaign, CampaignCounter, Recipient
from dialer.policy.attempt_state import AttemptStatus, Outcome, RecipientStatus
from dialer.policy.campaign_state import CampaignStatus

log = logging.getLogger(__name__)

RECIPIENT_PREFIX = "recipients."
ATTEMPT_PREFIX = "attempts."
#: Every counter a campaign has: one per recipient state, one per attempt outcome.
COUNTER_NAMES: tuple[str, ...] = tuple(
    [f"{RECIPIENT_PREFIX}{s.value}" for s in RecipientStatus]
    + [f"{ATTEMPT_PREFIX}{o.value}" for o in Outcome]
)


def recipient_key(status: RecipientStatus) -> str:
    return f"{RECIPIENT_PREFIX}{status.value}"


def outcome_key(outcome: Outcome) -> str:
    return f"{ATTEMPT_PREFIX}{outcome.value}"


#: Rows per count. Each transaction adds its deltas to one shard, chosen at random.
SHARDS = 8
#: Campaigns a pass of :func:`reconcile_some` takes (each costs a scan of its rows).
RECONCILE_BATCH = 50
_PENDING = "dialer.counter_deltas"


def create(session: Session, campaign_id: str) -> None:
    """Create the campaign's counters, all zero (once, with the campaign: the transitions
    then find every row they update)."""
    session.execute(sa.insert(CampaignCounter), _all_rows(campaign_id))


def bump(session: Session, campaign_id: str, deltas: Mapping[str, int]) -> None:
    """Add ``deltas`` to the campaign's counters, in the caller's transaction.

    The deltas are gathered and written just before the transaction commits (see
    :func:`apply_pending`): the counter rows are then locked only for the instant before the
    commit, always in one order (campaign, name), so transitions neither queue behind each
    other's row locks for long nor deadlock. A rollback forgets them. ``session`` must come
    from :func:`dialer.db.engine.session_factory` (``RuntimeError`` otherwise): no other
    session writes the deltas before its commit.
    """
    before_commit(session, _PENDING, apply_pending)
    pending: dict[tuple[str, str], int] = session.info.setdefault(_PENDING, {})
    for name, delta in deltas.items():
        if name not in _KNOWN:
            raise ValueError(f"unknown counter {name!r}")
        if delta:
            key = (campaign_id, name)
            pending[key] = pending.get(key, 0) + delta


def apply_pending(session: Session) -> None:
    """Write the deltas gathered by :func:`bump` to one random shard, one statement per
    campaign, then forget them."""
    pending: dict[tuple[str, str], int] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    # The transaction's other rows first: the counter rows are locked last, for the instant
    # before the commit (the Core UPDATE below does not flush the session by itself).
    session.flush()
    shard = random.randrange(SHARDS)
    by_campaign: dict[str, dict[str, int]] = {}
    for (campaign_id, name), delta in sorted(pending.items()):
        if delta:
            by_campaign.setdefault(campaign_id, {})[name] = delta
    for campaign_id, deltas in by_campaign.items():
        _add(session, campaign_id, shard, deltas)


_KNOWN = frozenset(COUNTER_NAMES)
_COUNTERS = cast(sa.Table, CampaignCounter.__table__)


def _add(session: Session, campaign_id: str, shard: int, deltas: Mapping[str, int]) -> None:
    """Add ``deltas`` (non-zero, in name order) to one shard of the campaign's counters.

    One prebuilt ``UPDATE``; only when it finds fewer rows than names does more follow.
    """
    result = session.execute(_bump(len(deltas)), _bump_params(campaign_id, shard, deltas))
    updated = cast("sa.CursorResult[Any]", result).rowcount
    if updated < len(deltas):
        _add_missing(session, campaign_id, shard, deltas, updated)


def _add_missing(
    session: Session, campaign_id: str, shard: int, deltas: Mapping[str, int], updated: int
) -> None:
    """Create the campaign's missing counter rows, then add the deltas the ``UPDATE`` of
    :func:`_add`, which found ``updated`` of their rows, could not.

    The rows it found are read back first. On PostgreSQL, another transaction that found the
    same rows missing may have created them in between; the ``UPDATE`` did not see those, so
    which deltas landed is unknown, and the campaign's counters are recounted from its rows
    instead (this transaction's own changes included). The rows are created by
    ``INSERT ... ON CONFLICT DO NOTHING``, all of them in one order, so concurrent creators
    neither fail nor wait on one another in a circle. The rows written here are locked after
    those the ``UPDATE`` found, out of name order: while a campaign's new rows are being
    created, two of its transactions may deadlock, and PostgreSQL then fails one of them.
    """
    rows = _COUNTERS.c
    found = set(
        session.scalars(
            sa.select(rows.name).where(
                rows.campaign_id == campaign_id,
                rows.shard == shard,
                rows.name.in_(list(deltas)),
            )
        )
    )
    session.execute(insert_ignoring_conflicts(session, _COUNTERS), _all_rows(campaign_id))
    if len(found) != updated:
        log.info("counter rows of campaign %s created concurrently; recounting", campaign_id)
        recount(session, campaign_id)
        return
    missing = {name: delta for name, delta in deltas.items() if name not in found}
    session.execute(_bump(len(missing)), _bump_params(campaign_id, shard, missing))


def _all_rows(campaign_id: str) -> list[dict[str, object]]:
    """Every counter row of a campaign, all zero, in (name, shard) order."""
    return [
        {"campaign_id": campaign_id, "name": name, "shard": shard, "value": 0}
        for name in sorted(COUNTER_NAMES)
        for shard in range(SHARDS)
    ]


def _bump_params(campaign_id: str, shard: int, deltas: Mapping[str, int]) -> dict[str, object]:
    params: dict[str, object] = {"b_campaign": campaign_id, "b_shard": shard}
    for i, (name, delta) in enumerate(deltas.items()):
        params[f"b_name_{i}"], params[f"b_delta_{i}"] = name, delta
    return params


@functools.cache
def _bump(n: int) -> sa.Update:
    """``UPDATE`` adding deltas to ``n`` counters of one campaign's shard in one statement.

    A Core statement on the table (no ORM object holds a counter), built once per ``n`` and
    compiled once: building one per transaction cost more than running it.
    """
    rows = _COUNTERS.c
    names: list[sa.BindParameter[str]] = [sa.bindparam(f"b_name_{i}") for i in range(n)]
    deltas = [sa.bindparam(f"b_delta_{i}", type_=sa.Integer) for i in range(n)]
    whens = [(rows.name == name, delta) for name, delta in zip(names, deltas, strict=True)]
    return (
        sa.update(_COUNTERS)
        .where(
            rows.campaign_id == sa.bindparam("b_campaign"),
            rows.shard == sa.bindparam("b_shard"),
            rows.name.in_(names),
        )
        .values(value=rows.value + sa.case(*whens, else_=0))
    )


def moved(source: RecipientStatus | None, target: RecipientStatus, n: int = 1) -> Counter[str]:
    """The counter deltas of ``n`` recipients moving from ``source`` (None: new) to ``target``."""
    deltas: Counter[str] = Counter()
    if source == target:
        return deltas
    if source is not None:
        deltas[recipient_key(source)] -= n
    deltas[recipient_key(target)] += n
    return deltas


def read(session: Session, campaign_ids: Iterable[str]) -> dict[str, dict[str, int]]:
    """The counters of each campaign, by name (missing campaigns map to all zeros)."""
    ids = list(campaign_ids)
    result: dict[str, dict[str, int]] = {cid: dict.fromkeys(COUNTER_NAMES, 0) for cid in ids}
    if not ids:
        return result
    apply_pending(session)
    rows = session.execute(
        sa.select(
            CampaignCounter.campaign_id, CampaignCounter.name, sa.func.sum(CampaignCounter.value)
        )
        .where(CampaignCounter.campaign_id.in_(ids))
        .group_by(CampaignCounter.campaign_id, CampaignCounter.name)
    )
    for campaign_id, name, value in rows:
        result[campaign_id][name] = int(value or 0)
    return result


def truth(session: Session, campaign_id: str) -> dict[str, int]:
    """The counts recomputed from the rows themselves (a scan of the campaign's rows)."""
    values = dict.fromkeys(COUNTER_NAMES, 0)
    by_status = session.execute(
        sa.select(Recipient.status, sa.func.count())
        .where(Recipient.campaign_id == campaign_id)
        .group_by(Recipient.status)
    )
    for status, n in by_status:
        values[recipient_key(RecipientStatus(status))] = int(n)
    by_outcome = session.execute(
        sa.select(CallAttempt.outcome, sa.func.count())
        .where(CallAttempt.campaign_id == campaign_id, CallAttempt.status == AttemptStatus.ENDED)
        .group_by(CallAttempt.outcome)
    )
    for outcome, n in by_outcome:
        if outcome is not None:
            values[outcome_key(Outcome(outcome))] = int(n)
    return values


def reconcile(session: Session, campaign_id: str) -> dict[str, int]:
    """Set the counters to the truth; return (and log) the drift found, truth minus counter.

    Takes the counter rows' locks first, so on PostgreSQL no transition can commit between the
    recount and the repair.
    """
    drift = recount(session, campaign_id)
    if drift:
        log.warning("counter drift in campaign %s repaired: %s", campaign_id, drift)
    return drift


def recount(session: Session, campaign_id: str) -> dict[str, int]:
    """Set the counters to the truth after a bulk change; returns the correction applied."""
    apply_pending(session)
    session.execute(
        sa.select(CampaignCounter.name)
        .where(CampaignCounter.campaign_id == campaign_id)
        .order_by(CampaignCounter.name, CampaignCounter.shard)
        .with_for_update()
    )
    stored = read(session, [campaign_id])[campaign_id]
    actual = truth(session, campaign_id)
    drift = {name: actual[name] - stored[name] for name in COUNTER_NAMES}
    drift = {name: d for name, d in sorted(drift.items()) if d}
    if drift:
        _add(session, campaign_id, 0, drift)
    return drift


def reconcile_some(
    sessions: sessionmaker[Session], after: str | None, limit: int = RECONCILE_BATCH
) -> tuple[str | None, dict[str, dict[str, int]]]:
    """Reconcile the next ``limit`` running or paused campaigns whose id follows ``after``.

    A pass costs a scan of ``limit`` campaigns' rows, however many campaigns are live; each is
    reconciled in a transaction of its own, so its counter rows stay locked for its own
    recount only. Passes take the campaigns in rotation, by id: the caller keeps the returned
    cursor and hands it to the next pass. It is the last id visited, or None when the pass
    reached the last live campaign (the next pass starts over). Returns the cursor and the
    drift found, and repaired, in each campaign reconciled (empty where there was none). A
    campaign whose reconcile fails is logged and left for its next turn, so it cannot stall
    the rotation.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, not {limit}")
    live = Campaign.status.in_([CampaignStatus.RUNNING, CampaignStatus.PAUSED])
    following = sa.true() if after is None else Campaign.id > after
    with sessions() as session:
        ids = list(
            session.scalars(
                sa.select(Campaign.id).where(live, following).order_by(Campaign.id).limit(limit)
            )
        )
    drift: dict[str, dict[str, int]] = {}
    for campaign_id in ids:
        try:
            with sessions() as session, session.begin():
                drift[campaign_id] = reconcile(session, campaign_id)
        except Exception:
            log.exception(
                "counters of campaign %s not reconciled; its next turn retries", campaign_id
            )
    return (ids[-1] if len(ids) == limit else None), drift
