"""The calling windows of stored campaigns and recipients (rows to policy values)."""

from __future__ import annotations

from dialer.db.models import Campaign, Recipient
from dialer.policy.calling_hours import (
    NotCallable,
    WeeklyScheduleSpec,
    campaign_window,
    legal_hours_for,
    recipient_window,
)
from dialer.policy.windows import AllOf

#: The columns :func:`of_campaign` reads: hot paths load these rather than the whole campaign
#: (whose context and speech settings may be large documents).
CAMPAIGN_WINDOW_COLUMNS = (
    Campaign.schedule_start_time,
    Campaign.schedule_end_time,
    Campaign.weekly_schedule,
)


def of_campaign(campaign: Campaign) -> AllOf:
    weekly = (
        WeeklyScheduleSpec.model_validate(campaign.weekly_schedule)
        if campaign.weekly_schedule
        else None
    )
    return campaign_window(campaign.schedule_start_time, campaign.schedule_end_time, weekly)


def of_recipient(campaign_window_: AllOf, recipient: Recipient) -> AllOf | NotCallable:
    """When this recipient may be dialed: the campaign's window and its legal hours."""
    legal = legal_hours_for(recipient.phone_number, recipient.time_zone)
    if isinstance(legal, NotCallable):
        return legal
    return recipient_window(campaign_window_, legal)
