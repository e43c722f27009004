"""Every table of the dialer; importing this module registers them all on ``Base.metadata``."""

from dialer.db.base import Base
from dialer.db.models.attempts import CallAttempt
from dialer.db.models.campaigns import CallerNumber, Campaign, CampaignRun
from dialer.db.models.contacts import ConsentRecord, NumberContact
from dialer.db.models.counters import CampaignCounter
from dialer.db.models.decisions import RecipientDecision
from dialer.db.models.events import CallEvent
from dialer.db.models.health import HealthTally
from dialer.db.models.history import CampaignHistory
from dialer.db.models.phone_numbers import PhoneNumber
from dialer.db.models.recipients import (
    ListState,
    Recipient,
    RecipientList,
    RecipientListEntry,
    RecipientListRejection,
)
from dialer.db.models.summaries import CallSummary
from dialer.db.models.suppression import Suppression
from dialer.db.models.tenancy import ApiKey, Tenant

__all__ = [
    "ApiKey",
    "Base",
    "CallAttempt",
    "CallEvent",
    "CallSummary",
    "CallerNumber",
    "Campaign",
    "CampaignCounter",
    "CampaignHistory",
    "CampaignRun",
    "ConsentRecord",
    "HealthTally",
    "ListState",
    "NumberContact",
    "PhoneNumber",
    "Recipient",
    "RecipientDecision",
    "RecipientList",
    "RecipientListEntry",
    "RecipientListRejection",
    "Suppression",
    "Tenant",
]
