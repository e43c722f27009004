"""The values a call's path passes along: small, immutable, no ORM objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dialer.calls.health import HealthChecks
from dialer.concurrency.keys import SlotLimits, SlotScope
from dialer.concurrency.slots import SlotClaim
from dialer.db.models import Campaign
from dialer.policy.attempt_state import AttemptStatus, Outcome

#: Seconds of answering-machine detection for a campaign that sets none.
DEFAULT_MACHINE_DETECTION_TIMEOUT_S = 30


@dataclass(frozen=True, slots=True)
class DialJob:
    """Everything a worker needs to place one attempt's call."""

    attempt_id: int
    campaign_id: str
    tenant_id: str
    recipient_id: int
    to: str
    #: The number the call is placed from; None only for a row that never had one.
    from_: str | None
    limits: SlotLimits
    machine_detection_timeout_s: int
    #: The tenant's cap on call starts per second (``tenants.max_cps``); None = no cap.
    tenant_cps: float | None = None

    @classmethod
    def of(
        cls,
        campaign: Campaign,
        *,
        attempt_id: int,
        recipient_id: int,
        to: str,
        from_: str | None,
        tenant_limit: int | None,
        caller_limit: int | None,
        tenant_cps: float | None = None,
    ) -> DialJob:
        """The job of one attempt of ``campaign``, under its tenant's and caller number's
        caps."""
        return cls(
            attempt_id=attempt_id,
            campaign_id=campaign.id,
            tenant_id=campaign.tenant_id,
            recipient_id=recipient_id,
            to=to,
            from_=from_,
            limits=SlotLimits(campaign.max_concurrency, tenant_limit, caller_limit),
            machine_detection_timeout_s=(
                campaign.machine_detection_timeout_seconds or DEFAULT_MACHINE_DETECTION_TIMEOUT_S
            ),
            tenant_cps=tenant_cps,
        )

    @property
    def scope(self) -> SlotScope:
        return SlotScope(self.campaign_id, self.tenant_id, self.from_)

    @property
    def log_ids(self) -> dict[str, str | int]:
        """The ids a log line about this job carries (never its numbers)."""
        return {
            "tenant_id": self.tenant_id,
            "campaign_id": self.campaign_id,
            "recipient_id": self.recipient_id,
            "attempt_id": self.attempt_id,
        }

    @property
    def claim(self) -> SlotClaim:
        """The attempt's request for its slots."""
        return SlotClaim(self.attempt_id, self.scope, self.limits)


@dataclass(frozen=True, slots=True)
class Ended:
    """An attempt ended in a transaction: its slots are to be freed once that commits."""

    attempt_id: int
    campaign_id: str
    outcome: Outcome
    scope: SlotScope
    #: The end made its recipient due again (the retry policy scheduled another attempt).
    retry: bool = False
    #: What the end may have tipped over (a campaign's abandon or failure rate, a number's
    #: health), to check once it commits; None for an attempt never placed.
    checks: HealthChecks | None = None


@dataclass(frozen=True, slots=True)
class Freed:
    """An attempt's end is committed and its slots are free: the campaign can take a call.

    Returned by everything that can end a call; the entry point (worker task, scheduler, API)
    decides whether to refill (see :mod:`dialer.calls.refill`).
    """

    attempt_id: int
    campaign_id: str
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """The columns of an attempt that ingesting an event reads (not an ORM object)."""

    id: int
    campaign_id: str
    recipient_id: int
    from_number: str | None
    status: AttemptStatus
    outcome: Outcome | None
    provider_call_id: str | None
    answered_by: str | None
    answered_at: datetime | None
    stream_started_at: datetime | None
    abandoned: bool | None
