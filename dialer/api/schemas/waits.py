"""Why a campaign is not calling: the ``waiting`` breakdown of ``GET /campaign/{id}``."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from dialer.api.schemas.campaigns import CampaignOut
from dialer.api.schemas.common import Output
from dialer.policy.waits import CampaignWaits


class SlotsOut(Output):
    max_concurrency: int
    in_use: int = Field(description="Calls in flight and claimed calls holding a slot.")
    free: int = Field(description="`max_concurrency - in_use`, at least 0.")
    source: str = Field(
        description="`semaphore`: read from the concurrency semaphore (Redis); `database`: "
        "counted from the calls the database has in flight (embedded mode, or Redis out of "
        "reach)."
    )


class BucketOut(Output):
    count: int
    next_at: datetime | None = Field(description="When the first of them may go.")


class WindowWaitOut(Output):
    count: int
    next_open: datetime | None = Field(description="The first opening among them.")
    campaign_window: int = Field(
        description="Of `count`, waiting for the campaign's own window (schedule, weekly hours)."
    )
    legal_hours: int = Field(
        description="Of `count`, waiting for their legal calling hours (recipient-local)."
    )


class CapWaitOut(Output):
    count: int
    next_at: datetime | None = Field(description="When the first of them may go.")
    reasons: dict[str, int] = Field(
        description="Of `count`, how many for each cap: `frequency-cap-24h`, "
        "`frequency-cap-7d`, `recently-answered`."
    )


class WaitingOut(Output):
    """Where the recipients not on a call are, and what each group waits for."""

    as_of: datetime
    calling: bool = Field(description="Whether the campaign itself may call now.")
    held_by: str | None = Field(
        description="Why it may not: `campaign-not-running`, `outside-campaign-window`, "
        "`window-closed`, `campaign-stopped`; null while it may."
    )
    opens_at: datetime | None = Field(
        description="When held by its own window: when that opens (null if never)."
    )
    slots: SlotsOut
    due: int = Field(
        description="Due now, not yet claimed: waiting for a free slot (`slots.free` is 0) "
        "or the next dispatch round."
    )
    window: WindowWaitOut
    frequency_cap: CapWaitOut = Field(
        description="Held by the tenant's frequency caps on their number (across its "
        "campaigns) until `next_at`."
    )
    retry: BucketOut = Field(description="Waiting for a retry the retry policy set.")
    pacer: BucketOut = Field(
        description="Claimed, slot held, waiting for the calls-per-second pace."
    )
    provider_backoff: BucketOut = Field(
        description="Claimed; the provider refused the dial retryably (429, 5xx): tried again "
        "at `next_at`."
    )
    starting: int = Field(description="Claimed, handed to a worker, not dialing yet.")

    @classmethod
    def of(cls, waits: CampaignWaits) -> WaitingOut:
        return cls(
            as_of=waits.as_of,
            calling=waits.calling,
            held_by=waits.held_by,
            opens_at=waits.opens_at,
            slots=SlotsOut(
                max_concurrency=waits.slots.max_concurrency,
                in_use=waits.slots.in_use,
                free=waits.slots.free,
                source=waits.slots.source.value,
            ),
            due=waits.due,
            window=WindowWaitOut.model_validate(waits.window),
            frequency_cap=CapWaitOut.model_validate(waits.frequency_cap),
            retry=BucketOut.model_validate(waits.retry),
            pacer=BucketOut.model_validate(waits.pacer),
            provider_backoff=BucketOut.model_validate(waits.provider_backoff),
            starting=waits.starting,
        )


class CampaignDetailOut(CampaignOut):
    """One campaign, with why its recipients wait."""

    waiting: WaitingOut
