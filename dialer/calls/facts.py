"""Stored campaigns and recipients as the values the policy reads (rows to policy values)."""

from __future__ import annotations

from dialer.db.models import Campaign, Recipient
from dialer.policy.calling_hours import (
    NotCallable,
    WeeklyScheduleSpec,
    campaign_window,
    legal_hours_for,
    recipient_window,
)
from dialer.policy.screen import CampaignFacts, RecipientFacts
from dialer.policy.windows import AllOf

#: The columns :func:`campaign_facts` reads besides the status: hot paths load these rather
#: than the whole campaign (whose context and speech settings may be large documents).
CAMPAIGN_WINDOW_COLUMNS = (
    Campaign.schedule_start_time,
    Campaign.schedule_end_time,
    Campaign.weekly_schedule,
)


def window_of(campaign: Campaign) -> AllOf:
    """The campaign's own window: its schedule span and weekly hours."""
    weekly = (
        WeeklyScheduleSpec.model_validate(campaign.weekly_schedule)
        if campaign.weekly_schedule
        else None
    )
    return campaign_window(campaign.schedule_start_time, campaign.schedule_end_time, weekly)


def campaign_facts(campaign: Campaign, window: AllOf | None = None) -> CampaignFacts:
    """What screening reads of ``campaign`` (pass its window when already built)."""
    return CampaignFacts(
        status=campaign.status,
        ended_reason=campaign.ended_reason,
        window=window_of(campaign) if window is None else window,
        schedule_end=campaign.schedule_end_time,
    )


def recipient_facts(recipient: Recipient, *, suppressed: bool) -> RecipientFacts:
    return RecipientFacts(
        recipient.phone_number, recipient.time_zone, suppressed, region=recipient.region
    )


def recipient_window_of(window: AllOf, recipient: Recipient) -> AllOf | NotCallable:
    """When this recipient may be dialed: the campaign's window and its legal hours."""
    legal = legal_hours_for(recipient.phone_number, recipient.time_zone, region=recipient.region)
    if isinstance(legal, NotCallable):
        return legal
    return recipient_window(window, legal)
