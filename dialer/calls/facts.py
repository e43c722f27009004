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
from dialer.policy.frequency import NO_CAPS, NO_CONTACT, ContactHistory, FrequencyCaps
from dialer.policy.screen import CampaignFacts, RecipientFacts
from dialer.policy.windows import AllOf

#: The columns :func:`campaign_facts` reads besides the status: hot paths load these rather
#: than the whole campaign (whose context and speech settings may be large documents).
CAMPAIGN_WINDOW_COLUMNS = (
    Campaign.schedule_start_time,
    Campaign.schedule_end_time,
    Campaign.weekly_schedule,
    Campaign.require_consent,
)


def window_of(campaign: Campaign) -> AllOf:
    """The campaign's own window: its schedule span and weekly hours."""
    weekly = (
        WeeklyScheduleSpec.model_validate(campaign.weekly_schedule)
        if campaign.weekly_schedule
        else None
    )
    return campaign_window(campaign.schedule_start_time, campaign.schedule_end_time, weekly)


def campaign_facts(
    campaign: Campaign, window: AllOf | None = None, caps: FrequencyCaps = NO_CAPS
) -> CampaignFacts:
    """What screening reads of ``campaign`` (pass its window when already built, and the
    frequency caps its calls obey where the screen reads contact histories)."""
    return CampaignFacts(
        status=campaign.status,
        ended_reason=campaign.ended_reason,
        window=window_of(campaign) if window is None else window,
        schedule_end=campaign.schedule_end_time,
        caps=caps,
        require_consent=bool(campaign.require_consent),
    )


def recipient_facts(
    recipient: Recipient,
    *,
    suppressed: bool,
    has_consent: bool = False,
    contacts: ContactHistory = NO_CONTACT,
) -> RecipientFacts:
    return RecipientFacts(
        recipient.phone_number,
        recipient.time_zone,
        suppressed,
        has_consent,
        contacts,
        region=recipient.region,
    )


def recipient_window_of(window: AllOf, recipient: Recipient) -> AllOf | NotCallable:
    """When this recipient may be dialed: the campaign's window and its legal hours."""
    legal = legal_hours_for(recipient.phone_number, recipient.time_zone, region=recipient.region)
    if isinstance(legal, NotCallable):
        return legal
    return recipient_window(window, legal)
