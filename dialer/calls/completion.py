"""A running campaign ends: every recipient settled (success), or its window closed.

The claim round decides when; these write the end in its transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.calls import counters, states
from dialer.db.models import Campaign, CampaignRun
from dialer.policy.attempt_state import RecipientStatus
from dialer.policy.campaign_state import CampaignAction, CampaignStatus, EndedReason, apply_action
from dialer.policy.screen import ScreenReason
from dialer.services import history

log = logging.getLogger(__name__)

_OPEN_STATES = (
    RecipientStatus.PENDING,
    RecipientStatus.WAITING_RETRY,
    RecipientStatus.QUEUED,
    RecipientStatus.IN_FLIGHT,
)


def is_finished(session: Session, campaign_id: str) -> bool:
    """No recipient of the campaign is pending, waiting to retry, queued or in flight."""
    values = counters.read(session, [campaign_id])[campaign_id]
    return all(values[counters.recipient_key(s)] == 0 for s in _OPEN_STATES)


def finish(session: Session, campaign: Campaign, *, now: datetime) -> None:
    """Complete a campaign whose every recipient reached a terminal state."""
    source = campaign.status
    transition = apply_action(campaign.status, CampaignAction.FINISH)
    campaign.status = transition.status
    campaign.ended_reason = transition.ended_reason
    campaign.updated_at = now
    close_run(session, campaign.current_run_id, campaign.ended_reason, now=now)
    _record(session, campaign, CampaignAction.FINISH, now=now, source=source)
    log.info("campaign %s completed: %s", campaign.id, campaign.ended_reason)


def close_window(session: Session, campaign: Campaign, *, now: datetime) -> None:
    """``schedule_end_time`` passed: no new dials, calls in flight finish, the rest is skipped."""
    source = campaign.status
    transition = apply_action(campaign.status, CampaignAction.CLOSE_WINDOW)
    campaign.status = transition.status
    campaign.ended_reason = transition.ended_reason
    campaign.updated_at = now
    skipped = states.end_unreached(
        session, campaign.id, RecipientStatus.SKIPPED, ScreenReason.WINDOW_CLOSED, now=now
    )
    close_run(session, campaign.current_run_id, campaign.ended_reason, now=now)
    _record(session, campaign, CampaignAction.CLOSE_WINDOW, now=now, source=source, skipped=skipped)
    log.info("campaign %s window closed; %d recipient(s) never reached", campaign.id, skipped)


def close_run(
    session: Session, run_id: str | None, reason: EndedReason | None, *, now: datetime
) -> None:
    """End the campaign's current run (once: a run already ended keeps its end)."""
    if run_id is not None:
        session.execute(
            sa.update(CampaignRun)
            .where(CampaignRun.id == run_id, CampaignRun.ended_at.is_(None))
            .values(ended_at=now, ended_reason=reason)
        )


def _record(
    session: Session,
    campaign: Campaign,
    action: CampaignAction,
    *,
    now: datetime,
    source: CampaignStatus,
    **more: object,
) -> None:
    """The dialer's own action in the campaign's history (actor ``system``)."""
    details = {
        "action": action.value,
        "from": source.value,
        "to": campaign.status.value,
        "ended_reason": campaign.ended_reason.value if campaign.ended_reason else None,
        **more,
    }
    history.record(session, campaign, history.SYSTEM, history.Kind.ACTION, details, now=now)
