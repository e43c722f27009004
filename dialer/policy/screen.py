"""Whether a recipient may be called now: one decision, made at claim and again at dial.

Dispatch screens the recipients it claims, and the dial path screens an attempt again right
before asking the provider (a suppression, a pause or a closing window may have come in
between). Both call :func:`screen` over the same facts, so they can never disagree. A decision
is one of:

- :class:`CallNow`;
- :class:`Deferred`: not now; callable again at ``until`` (None: once the campaign can call
  again);
- :class:`Terminal`: never in this run; the recipient ends in ``status`` with ``reason``.

The order of the checks is the order of precedence: the campaign (running, its schedule not
over, its own window open), then the number (do-not-call list, consent when the campaign
requires it, a known time zone), then the recipient's legal hours, then the tenant's frequency
caps on the number across campaigns (:mod:`dialer.policy.frequency`: a capped number waits
until the cap frees, it is never ended for it). A campaign-level decision does not depend on
the recipient, so dispatch makes it once per campaign (:func:`screen_campaign`) before reading
any recipient.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dialer.policy import calling_hours
from dialer.policy.attempt_state import RecipientStatus
from dialer.policy.calling_hours import NotCallable, legal_hours_for, recipient_window
from dialer.policy.campaign_state import CampaignStatus, EndedReason
from dialer.policy.frequency import (
    NO_CAPS,
    NO_CONTACT,
    CapReason,
    ContactHistory,
    FrequencyCaps,
    held_until,
)
from dialer.policy.windows import AllOf


class ScreenReason(StrEnum):
    """Why a recipient is not called now (stored on the recipient when it ends for it)."""

    CAMPAIGN_NOT_RUNNING = "campaign-not-running"
    CAMPAIGN_STOPPED = "campaign-stopped"
    WINDOW_CLOSED = "window-closed"
    OUTSIDE_CAMPAIGN_WINDOW = "outside-campaign-window"
    SUPPRESSED = "suppressed"
    UNKNOWN_TIME_ZONE = calling_hours.UNKNOWN_TIME_ZONE
    OUTSIDE_LEGAL_HOURS = "outside-legal-hours"
    NO_WINDOW_LEFT = "no-window-left"
    NO_CONSENT = "no-consent"
    FREQUENCY_CAP_24H = CapReason.PER_DAY.value
    FREQUENCY_CAP_7D = CapReason.PER_WEEK.value
    RECENTLY_ANSWERED = CapReason.RECENTLY_ANSWERED.value


@dataclass(frozen=True, slots=True)
class CallNow:
    """Nothing stands in the way of the call."""


@dataclass(frozen=True, slots=True)
class Deferred:
    """Not now: callable again at ``until``, or, when None, once the campaign can call again
    (it runs again, or its schedule is changed to open again)."""

    until: datetime | None
    reason: ScreenReason


@dataclass(frozen=True, slots=True)
class Terminal:
    """Never in this run: the recipient ends in ``status`` because of ``reason``."""

    status: RecipientStatus
    reason: ScreenReason


Decision = CallNow | Deferred | Terminal
CALL_NOW = CallNow()


@dataclass(frozen=True, slots=True)
class CampaignFacts:
    """What screening reads of a campaign."""

    status: CampaignStatus
    ended_reason: EndedReason | None
    #: Its schedule span and weekly hours (:func:`~dialer.policy.calling_hours.campaign_window`).
    window: AllOf
    schedule_end: datetime | None
    #: The tenant's frequency caps with the campaign's own on top (none: no cap).
    caps: FrequencyCaps = NO_CAPS
    #: Recipients whose number has no consent record end ``skipped`` (``no-consent``).
    require_consent: bool = False


@dataclass(frozen=True, slots=True)
class RecipientFacts:
    """What screening reads of a recipient: its number, its explicit zone, whether the
    number is on the tenant's do-not-call list now, whether it has a consent record (read
    only when the campaign requires consent), its contacts across the tenant's campaigns
    (read only when a frequency cap holds), and its explicit region (``US-FL``, ``FR``)."""

    phone_number: str
    time_zone: str | None
    suppressed: bool
    has_consent: bool = False
    contacts: ContactHistory = NO_CONTACT
    region: str | None = None


def screen_campaign(campaign: CampaignFacts, now: datetime) -> Decision:
    """The part of :func:`screen` that holds for every recipient of ``campaign``."""
    if campaign.status is CampaignStatus.COMPLETED:
        if campaign.ended_reason is EndedReason.WINDOW_CLOSED:
            return Terminal(RecipientStatus.SKIPPED, ScreenReason.WINDOW_CLOSED)
        return Terminal(RecipientStatus.CANCELED, ScreenReason.CAMPAIGN_STOPPED)
    if campaign.status is not CampaignStatus.RUNNING:
        return Deferred(None, ScreenReason.CAMPAIGN_NOT_RUNNING)
    if campaign.schedule_end is not None and now >= campaign.schedule_end:
        return Terminal(RecipientStatus.SKIPPED, ScreenReason.WINDOW_CLOSED)
    if not campaign.window.allows(now):
        # No opening left before the schedule ends is no reason to end anything yet: the
        # schedule may be changed while the campaign runs; it closes when its end time comes.
        return Deferred(campaign.window.next_open(now), ScreenReason.OUTSIDE_CAMPAIGN_WINDOW)
    return CALL_NOW


def screen(recipient: RecipientFacts, campaign: CampaignFacts, now: datetime) -> Decision:
    """May ``recipient`` of ``campaign`` be called at ``now``? See the module docstring."""
    decision = screen_campaign(campaign, now)
    if not isinstance(decision, CallNow):
        return decision
    return screen_recipient(recipient, campaign, now)


def screen_recipient(recipient: RecipientFacts, campaign: CampaignFacts, now: datetime) -> Decision:
    """The recipient's part of :func:`screen`, for a campaign :func:`screen_campaign` let
    through at ``now``."""
    if recipient.suppressed:
        return Terminal(RecipientStatus.SUPPRESSED, ScreenReason.SUPPRESSED)
    if campaign.require_consent and not recipient.has_consent:
        return Terminal(RecipientStatus.SKIPPED, ScreenReason.NO_CONSENT)
    legal = legal_hours_for(recipient.phone_number, recipient.time_zone, region=recipient.region)
    if isinstance(legal, NotCallable):
        # A number's zones do not change: waiting would never make it callable.
        return Terminal(RecipientStatus.SKIPPED, ScreenReason(legal.reason))
    window = recipient_window(campaign.window, legal)
    if window.allows(now):
        held = held_until(campaign.caps, recipient.contacts, now)
        if held is None:
            return CALL_NOW
        # Its window may be closed when the cap frees: screened again then, as any deferral.
        return Deferred(held.until, ScreenReason(held.reason.value))
    opens = window.next_open(now)
    if opens is None:
        return Terminal(RecipientStatus.SKIPPED, ScreenReason.NO_WINDOW_LEFT)
    return Deferred(opens, ScreenReason.OUTSIDE_LEGAL_HOURS)
