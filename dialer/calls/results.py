"""What the steps of a call's path report, as values (for the entry points, logs and tests)."""

from __future__ import annotations

from enum import StrEnum


class DialResult(StrEnum):
    """What one dial (a dial task, or a refill placing its claim) did."""

    #: The provider accepted the call; its call id is stored.
    DIALED = "dialed"
    #: The provider refused the call outright (4xx): the attempt ended ``failed``.
    REFUSED = "refused"
    #: The provider was busy (429, 5xx): back in the queue, its task sent again after a backoff.
    PROVIDER_BUSY = "provider-busy"
    #: No slot was free: its task comes back later.
    WAITING_FOR_SLOT = "waiting-for-slot"
    #: The calls-per-second pace said wait: its task comes back after that wait.
    PACED = "paced"
    #: The slots' store had lost its holders: rebuilt from the database, its task comes back.
    SLOTS_LOST = "slots-lost"
    #: Screened out right before the dial (see the decision): the attempt ended unstarted.
    SCREENED_OUT = "screened-out"
    #: The attempt was no longer queued (a repeated task): nothing done.
    NOT_QUEUED = "not-queued"
    #: The dial's outcome was ambiguous and the provider lists no such call: ended ``unknown``.
    UNKNOWN = "unknown"
    #: The dial's outcome was ambiguous and could not be resolved yet: left for the reaper.
    UNRESOLVED = "unresolved"


class Resolution(StrEnum):
    """What looking up an attempt that has no call id at the provider found."""

    #: A call of ours is there: its id is stored and its state applied.
    FOUND = "found"
    #: The provider lists no such call: the attempt ended ``unknown``.
    NO_CALL = "no-call"
    #: The lookup failed, or found more than one candidate: try again later.
    UNRESOLVED = "unresolved"
    #: The attempt had ended, or had its call id, by the time it was looked at.
    SETTLED = "settled"


class ReapVerdict(StrEnum):
    """What the reaper made of one stuck attempt."""

    ENDED = "ended"
    STILL_LIVE = "still-live"
    UNRESOLVED = "unresolved"
