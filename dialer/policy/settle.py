"""Where a recipient goes when its attempt ends: done, exhausted, skipped, or back to wait.

The retry policy says whether and when to call again (:func:`~dialer.policy.retry.next_attempt`);
the recipient's calling window moves that time to the next moment it allows (or, if it never
will, the recipient is skipped: attempts were left, windows were not); a campaign that ended
meanwhile (stopped, or its window closed) ends the recipient with that reason instead of a
retry it would never make.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dialer.policy.attempt_state import Outcome, RecipientStatus, recipient_after_outcome
from dialer.policy.calling_hours import NotCallable
from dialer.policy.campaign_state import CampaignStatus
from dialer.policy.retry import RetryPolicy, next_attempt
from dialer.policy.screen import CampaignFacts, ScreenReason, Terminal, screen_campaign
from dialer.policy.windows import AllOf


@dataclass(frozen=True, slots=True)
class Settlement:
    """The recipient's next state, why (None for a plain retry or done), and when it is due
    again (set exactly when the status is ``waiting_retry``)."""

    status: RecipientStatus
    reason: str | None = None
    retry_at: datetime | None = None


def after_outcome(
    outcome: Outcome,
    *,
    policy: RetryPolicy,
    attempts_so_far: int,
    window: AllOf | NotCallable,
    campaign: CampaignFacts,
    now: datetime,
    jitter_seed: str,
) -> Settlement:
    """The recipient's settlement after an attempt that ended with ``outcome`` at ``now``.

    ``attempts_so_far`` counts this run's attempts, this one included; ``window`` is the
    recipient's calling window for the campaign.
    """
    retry_at = next_attempt(policy, attempts_so_far, outcome, now, jitter_seed=jitter_seed)
    reason: str | None = None
    if retry_at is not None:
        retry_at = None if isinstance(window, NotCallable) else window.next_open(retry_at)
        if retry_at is None:
            reason = ScreenReason.NO_WINDOW_LEFT
    status = recipient_after_outcome(outcome, retry_at is not None)
    if status is RecipientStatus.WAITING_RETRY:
        if campaign.status is CampaignStatus.COMPLETED:
            ended = screen_campaign(campaign, now)
            assert isinstance(ended, Terminal)  # a completed campaign ends its recipients
            return Settlement(ended.status, ended.reason)
        return Settlement(status, None, retry_at)
    if status is RecipientStatus.EXHAUSTED:
        if reason is not None:
            return Settlement(RecipientStatus.SKIPPED, reason)  # attempts were left; windows not
        return Settlement(status, f"last-outcome-{outcome.value}")
    return Settlement(status, reason)
