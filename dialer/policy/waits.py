"""Why a campaign's recipients are not being called right now: each waiting recipient in one
bucket, and when the first of each bucket may go.

Pure: counts in (grouped as the database keeps them), a breakdown out, the clock passed in.
The campaign's own state and window are the screen's
(:func:`~dialer.policy.screen.screen_campaign`), so this never disagrees with dispatch. The
buckets, in the order a recipient meets them:

- ``window``: not callable before a window opens: the campaign's own (schedule span, weekly
  hours) or the recipient's legal calling hours; ``next_open`` is the first opening;
- ``frequency_cap``: the tenant's frequency caps on the number (attempts in 24 hours or 7
  days across its campaigns, quiet days after a person answered) hold it until ``next_at``,
  with how many for each cap (``reasons``);
- ``retry``: an attempt ended and the retry policy set the next one (``next_at``);
- ``due``: callable now and not yet claimed: they wait for a free slot (``slots.free`` is 0)
  or for the next dispatch round;
- ``pacer``: claimed, a slot held, the dial task waiting for the calls-per-second pace;
- ``provider_backoff``: claimed, the provider refused the dial retryably (429, 5xx), tried
  again at ``next_at``;
- ``starting``: claimed and handed to a worker that has not dialed yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from dialer.policy.attempt_state import RecipientStatus
from dialer.policy.screen import CallNow, CampaignFacts, Deferred, ScreenReason, screen_campaign

#: Reasons the screen stores on a recipient it deferred to a window's opening.
WINDOW_REASONS = frozenset({ScreenReason.OUTSIDE_LEGAL_HOURS, ScreenReason.OUTSIDE_CAMPAIGN_WINDOW})
#: Reasons the screen stores on a recipient it deferred for a frequency cap.
CAP_REASONS = frozenset(
    {
        ScreenReason.FREQUENCY_CAP_24H,
        ScreenReason.FREQUENCY_CAP_7D,
        ScreenReason.RECENTLY_ANSWERED,
    }
)


class SlotSource(StrEnum):
    """Where ``slots.in_use`` was read: the semaphore itself, or the calls the database has in
    flight (embedded mode, whose semaphore lives in the scheduler process, or Redis out of
    reach)."""

    SEMAPHORE = "semaphore"
    DATABASE = "database"


@dataclass(frozen=True, slots=True)
class WaitingGroup:
    """Claimable recipients of one (status, reason), due now or not: how many, and the
    earliest ``next_attempt_at`` among them."""

    status: RecipientStatus
    reason: str | None
    due: bool
    count: int
    earliest: datetime | None


@dataclass(frozen=True, slots=True)
class QueuedAttempt:
    """An attempt claimed but not dialing: when its dial task is due (``enqueued_at``), and
    how often the provider refused it retryably."""

    due_at: datetime | None
    provider_retries: int


@dataclass(frozen=True, slots=True)
class Slots:
    max_concurrency: int
    in_use: int
    source: SlotSource

    @property
    def free(self) -> int:
        return max(0, self.max_concurrency - self.in_use)


@dataclass(slots=True)
class Bucket:
    count: int = 0
    #: When the first of them may go (None when there are none, or no time is known).
    next_at: datetime | None = None

    def add(self, count: int, at: datetime | None) -> None:
        self.count += count
        if at is not None and (self.next_at is None or at < self.next_at):
            self.next_at = at


@dataclass(slots=True)
class WindowWait:
    """Recipients waiting for a window to open, and the first opening."""

    count: int = 0
    next_open: datetime | None = None
    #: Of ``count``, those waiting for the campaign's own window (schedule, weekly hours).
    campaign_window: int = 0
    #: Of ``count``, those waiting for their legal calling hours.
    legal_hours: int = 0

    def add(self, count: int, at: datetime | None, *, legal: bool) -> None:
        self.count += count
        if legal:
            self.legal_hours += count
        else:
            self.campaign_window += count
        if at is not None and (self.next_open is None or at < self.next_open):
            self.next_open = at


@dataclass(slots=True)
class CapWait:
    """Recipients waiting for a frequency cap on their number to free."""

    count: int = 0
    next_at: datetime | None = None
    #: Of ``count``, how many for each cap (``frequency-cap-24h``, ``frequency-cap-7d``,
    #: ``recently-answered``).
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, count: int, at: datetime | None, reason: str) -> None:
        self.count += count
        self.reasons[reason] = self.reasons.get(reason, 0) + count
        if at is not None and (self.next_at is None or at < self.next_at):
            self.next_at = at


@dataclass(slots=True)
class CampaignWaits:
    as_of: datetime
    #: Whether the campaign itself may call now (running, inside its own window).
    calling: bool
    #: When it may not: why (``campaign-not-running``, ``outside-campaign-window``...).
    held_by: str | None
    #: When it is held by its own window: when that opens (None if never, or not held so).
    opens_at: datetime | None
    slots: Slots
    due: int = 0
    window: WindowWait = field(default_factory=WindowWait)
    frequency_cap: CapWait = field(default_factory=CapWait)
    retry: Bucket = field(default_factory=Bucket)
    pacer: Bucket = field(default_factory=Bucket)
    provider_backoff: Bucket = field(default_factory=Bucket)
    starting: int = 0


def campaign_waits(
    campaign: CampaignFacts,
    groups: Iterable[WaitingGroup],
    queued: Iterable[QueuedAttempt],
    slots: Slots,
    now: datetime,
) -> CampaignWaits:
    """The breakdown of a campaign's waiting recipients at ``now`` (see the module)."""
    gate = screen_campaign(campaign, now)
    held_by = None if isinstance(gate, CallNow) else str(gate.reason)
    own_window = isinstance(gate, Deferred) and gate.reason is ScreenReason.OUTSIDE_CAMPAIGN_WINDOW
    opens_at = gate.until if isinstance(gate, Deferred) and own_window else None
    waits = CampaignWaits(now, isinstance(gate, CallNow), held_by, opens_at, slots)
    for group in groups:
        if group.due:
            if own_window:
                waits.window.add(group.count, opens_at, legal=False)
            else:
                waits.due += group.count
        elif group.reason in CAP_REASONS:
            assert group.reason is not None
            waits.frequency_cap.add(group.count, group.earliest, group.reason)
        elif group.status is RecipientStatus.PENDING or group.reason in WINDOW_REASONS:
            # A pending recipient is due later only when the screen deferred it to a window.
            legal = group.reason != ScreenReason.OUTSIDE_CAMPAIGN_WINDOW
            waits.window.add(group.count, group.earliest, legal=legal)
        else:
            waits.retry.add(group.count, group.earliest)
    for attempt in queued:
        if attempt.due_at is not None and attempt.due_at > now:
            bucket = waits.provider_backoff if attempt.provider_retries else waits.pacer
            bucket.add(1, attempt.due_at)
        else:
            waits.starting += 1
    return waits
