"""What a call's end may tip over, checked once the end commits: a campaign pauses itself
(abandon rate, failure rate), a caller number is quarantined.

The checks run after the end's commit and its slots' release, in a transaction of their
own: the end never waits on them, and a check that fails is logged and forgotten (the next
end checks again). Each reads a handful of tally rows or the campaign's last few attempts
(:mod:`dialer.calls.health`), and runs only when the end can have changed its answer: the
abandon rate after an abandoned call, the failure rate after a failed dial, a number's
health after a dial from it.

A campaign pauses itself the way a user pauses it (:func:`pause_itself`): no new dial
starts, calls in flight finish and settle as usual, slots and counts stay exact; the
reason is kept in ``paused_reason`` until it starts again. Starting it again is the
operator's decision: over its abandon limit still, it pauses again only after a *new*
abandoned call (the check runs on abandoned calls only), and the failure rate counts only
dials placed since it started again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from dialer.calls import health
from dialer.calls.health import HealthChecks
from dialer.db.bulk import for_update
from dialer.db.models import CallAttempt, Campaign, PhoneNumber
from dialer.observability import metrics
from dialer.policy.attempt_state import AttemptStatus
from dialer.policy.campaign_state import (
    CampaignAction,
    CampaignStatus,
    PausedReason,
    apply_action,
)
from dialer.policy.health import (
    HealthLimits,
    failed_at_carrier,
    number_problem,
    over_abandon_limit,
    over_failure_limit,
)
from dialer.services import history

log = logging.getLogger(__name__)


class HealthGuard:
    """Runs the checks an end calls for (:class:`~dialer.calls.health.HealthChecks`)."""

    def __init__(
        self, sessions: sessionmaker[Session], limits: HealthLimits, clock: Callable[[], datetime]
    ) -> None:
        self._sessions = sessions
        self._limits = limits
        self._clock = clock

    @property
    def limits(self) -> HealthLimits:
        return self._limits

    def check(self, checks: HealthChecks) -> None:
        """Quarantine the number, pause the campaign, as the tallies say; never raises (a
        failed check is logged: the next end runs it again)."""
        try:
            with self._sessions() as session, session.begin():
                self._check(session, checks, self._clock())
        except Exception:
            log.exception("campaign %s: health check failed", checks.campaign_id)

    def _check(self, session: Session, checks: HealthChecks, now: datetime) -> None:
        if checks.number:
            quarantine_if_unhealthy(session, checks.number, self._limits, now=now)
        if checks.abandoned:
            tally = health.abandon_tally(
                session, checks.campaign_id, now=now, days=self._limits.abandon_window_days
            )
            max_rate = session.scalar(
                sa.select(Campaign.max_abandon_rate).where(Campaign.id == checks.campaign_id)
            )
            if max_rate is not None and over_abandon_limit(tally, max_rate, self._limits):
                pause_itself(session, checks.campaign_id, PausedReason.ABANDON_RATE, now=now)
        if checks.failed and self._recent_failures(session, checks.campaign_id):
            pause_itself(session, checks.campaign_id, PausedReason.FAILURE_RATE, now=now)

    def _recent_failures(self, session: Session, campaign_id: str) -> bool:
        """Whether the campaign's latest dials since it last started mostly failed."""
        since = session.scalar(sa.select(Campaign.resumed_at).where(Campaign.id == campaign_id))
        stmt = (
            sa.select(CallAttempt.outcome, CallAttempt.error_code)
            .where(
                CallAttempt.campaign_id == campaign_id,
                CallAttempt.status == AttemptStatus.ENDED,
                CallAttempt.provider_call_id.is_not(None),
            )
            .order_by(CallAttempt.id.desc())
            .limit(self._limits.failure_last_dials)
        )
        if since is not None:
            stmt = stmt.where(CallAttempt.dialed_at >= since)
        recent = [
            outcome is not None and failed_at_carrier(outcome, code)
            for outcome, code in session.execute(stmt)
        ]
        return over_failure_limit(recent, self._limits)


def quarantine_if_unhealthy(
    session: Session, number: str, limits: HealthLimits, *, now: datetime
) -> bool:
    """Quarantine ``number`` if its tallies over the window (since its last release, if
    later) cross a threshold; True when this call quarantined it."""
    row = session.execute(
        sa.select(PhoneNumber.id, PhoneNumber.tenant_id, PhoneNumber.released_at).where(
            PhoneNumber.number == number, PhoneNumber.quarantined_at.is_(None)
        )
    ).one_or_none()
    if row is None:
        return False  # quarantined already, or not a registered number
    since = now - timedelta(hours=limits.number_window_h)
    if row.released_at is not None and row.released_at > since:
        since = row.released_at
    tally = health.number_tally(session, number, since=since)
    problem = number_problem(tally, limits)
    if problem is None:
        return False
    done = session.execute(
        sa.update(PhoneNumber)
        .where(PhoneNumber.id == row.id, PhoneNumber.quarantined_at.is_(None))
        .values(quarantined_at=now, quarantine_reason=problem.value)
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        return False
    metrics.health_action(problem.value)
    log.warning(
        "phone number %s quarantined: %s (%d dials, %d answered, %d refused by carriers)",
        row.id,
        problem.value,
        tally.dials,
        tally.answered,
        tally.rejected,
        extra={"tenant_id": row.tenant_id, "phone_number_id": row.id, "reason": problem.value},
    )
    return True


def pause_itself(
    session: Session, campaign_id: str, reason: PausedReason, *, now: datetime
) -> bool:
    """Pause a running campaign with ``reason``, as a user's pause does (calls in flight
    finish); False when it was not running (paused or ended meanwhile)."""
    campaign = session.scalars(
        for_update(session, sa.select(Campaign).where(Campaign.id == campaign_id))
    ).one_or_none()
    if campaign is None or campaign.status is not CampaignStatus.RUNNING:
        return False
    pause(session, campaign, reason, now=now)
    return True


def pause(session: Session, campaign: Campaign, reason: PausedReason, *, now: datetime) -> None:
    """Pause ``campaign`` (running, loaded in the caller's transaction) with ``reason``, and
    say so in its history (the ``system``'s action)."""
    source = campaign.status
    campaign.status = apply_action(campaign.status, CampaignAction.PAUSE).status
    campaign.paused_reason = reason.value
    campaign.updated_at = now
    details = {
        "action": CampaignAction.PAUSE.value,
        "from": source.value,
        "to": campaign.status.value,
        "paused_reason": reason.value,
    }
    history.record(session, campaign, history.SYSTEM, history.Kind.ACTION, details, now=now)
    metrics.health_action(reason.value)
    log.warning(
        "campaign %s paused itself: %s",
        campaign.id,
        reason.value,
        extra={"campaign_id": campaign.id, "tenant_id": campaign.tenant_id},
    )
