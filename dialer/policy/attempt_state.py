"""Call attempts and recipients: their states, and the only moves between them.

An attempt's status only moves forward: a late or repeated provider event can never move it
back, and once it has ended its outcome is fixed (the first terminal event wins).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dialer.errors import IllegalTransition


class AttemptStatus(StrEnum):
    QUEUED = "queued"  # claimed by the scheduler, dial task enqueued
    DIALING = "dialing"  # a worker holds it and is asking the provider for the call
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"  # answered
    ENDED = "ended"  # terminal; see the outcome


class Outcome(StrEnum):
    HUMAN = "human"
    VOICEMAIL = "voicemail"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    CANCELED = "canceled"
    #: The call's fate could not be learned (the provider lost it, reconciling found nothing).
    UNKNOWN = "unknown"


_RANK = {status: rank for rank, status in enumerate(AttemptStatus)}


@dataclass(frozen=True, slots=True)
class AttemptState:
    status: AttemptStatus
    outcome: Outcome | None = None

    def __post_init__(self) -> None:
        if (self.status is AttemptStatus.ENDED) != (self.outcome is not None):
            raise ValueError("an attempt has an outcome exactly when it has ended")

    @property
    def ended(self) -> bool:
        return self.status is AttemptStatus.ENDED


def advance(
    state: AttemptState, status: AttemptStatus, outcome: Outcome | None = None
) -> AttemptState:
    """The state after an event reporting ``status`` (with ``outcome`` when it is the end).

    Events that would move the attempt backwards, or repeat where it already is, or report a
    second end, leave it unchanged: providers deliver callbacks late, twice and out of order.
    """
    if status is AttemptStatus.ENDED and outcome is None:
        raise ValueError("an end event needs an outcome")
    if state.ended or _RANK[status] <= _RANK[state.status]:
        return state
    return AttemptState(status, outcome if status is AttemptStatus.ENDED else None)


class RecipientStatus(StrEnum):
    PENDING = "pending"  # never tried in this run
    QUEUED = "queued"  # an attempt is claimed and waiting for a worker
    IN_FLIGHT = "in_flight"  # the provider has (or may have) a call
    WAITING_RETRY = "waiting_retry"  # due again at next_attempt_at
    DONE = "done"  # reached; last outcome says how
    EXHAUSTED = "exhausted"  # no attempts left, or the outcome does not retry
    SUPPRESSED = "suppressed"  # on the do-not-call list
    SKIPPED = "skipped"  # not callable: window closed, unknown time zone...
    CANCELED = "canceled"  # the campaign was stopped before it was reached


TERMINAL_RECIPIENT = frozenset(
    {
        RecipientStatus.DONE,
        RecipientStatus.EXHAUSTED,
        RecipientStatus.SUPPRESSED,
        RecipientStatus.SKIPPED,
        RecipientStatus.CANCELED,
    }
)
#: States the scheduler may claim a recipient from (waiting_retry only once due).
CLAIMABLE_RECIPIENT = frozenset({RecipientStatus.PENDING, RecipientStatus.WAITING_RETRY})

R = RecipientStatus
_ENDINGS = {R.SUPPRESSED, R.SKIPPED, R.CANCELED}
RECIPIENT_TRANSITIONS: dict[RecipientStatus, frozenset[RecipientStatus]] = {
    R.PENDING: frozenset({R.QUEUED} | _ENDINGS),
    # A queued attempt whose dial never started can be released back, or fail outright.
    R.QUEUED: frozenset({R.IN_FLIGHT, R.PENDING, R.WAITING_RETRY, R.DONE, R.EXHAUSTED} | _ENDINGS),
    # A call that ends after its campaign was stopped, or its window closed, and would have
    # been retried, ends the recipient with that reason instead.
    R.IN_FLIGHT: frozenset({R.WAITING_RETRY, R.DONE, R.EXHAUSTED, R.CANCELED, R.SKIPPED}),
    R.WAITING_RETRY: frozenset({R.QUEUED} | _ENDINGS),
    # Terminal states are left only when a new run of the campaign resets its recipients.
    R.DONE: frozenset({R.PENDING}),
    R.EXHAUSTED: frozenset({R.PENDING}),
    R.SUPPRESSED: frozenset({R.PENDING}),
    R.SKIPPED: frozenset({R.PENDING}),
    R.CANCELED: frozenset({R.PENDING}),
}


def move_recipient(current: RecipientStatus, target: RecipientStatus) -> RecipientStatus:
    """``target`` if the move is legal, else :class:`IllegalTransition`."""
    if target not in RECIPIENT_TRANSITIONS[current]:
        raise IllegalTransition("recipient", current.value, f"move to {target.value}")
    return target


def recipient_after_outcome(outcome: Outcome, retry_at_exists: bool) -> RecipientStatus:
    """Where a recipient goes when its attempt ends with ``outcome``.

    ``retry_at_exists`` is whether the retry policy gave a next attempt time. A human answer,
    or a voicemail the policy does not retry, reaches the recipient (done); any other end with
    no retry left exhausts it.
    """
    if outcome is Outcome.HUMAN:
        return R.DONE
    if retry_at_exists:
        return R.WAITING_RETRY
    return R.DONE if outcome is Outcome.VOICEMAIL else R.EXHAUSTED
