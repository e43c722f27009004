"""The launch preview's body (:mod:`dialer.services.preview`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from dialer.api.schemas.common import Output


class DeferredOut(Output):
    """Recipients that would wait for one reason, and the earliest and latest they would be
    due again (null: once the campaign may call again)."""

    reason: str
    count: int
    earliest_until: datetime | None
    latest_until: datetime | None


class TurnedAwayOut(Output):
    """Recipients the screen would end without a call: ``status`` ``skipped`` or
    ``suppressed`` (or ``canceled``), with the reason."""

    status: str
    reason: str
    count: int


class AssumptionsOut(Output):
    source: str = Field(
        description="`history`: the campaign's own ended attempts; `defaults`: the documented "
        "defaults (45 s answered, 25 s not, answer rate 0.35)."
    )
    ended_attempts: int
    answered_call_s: float
    unanswered_call_s: float
    answer_rate: float
    max_concurrency: int
    calls_per_second: float
    max_attempts: int


class EstimateOut(Output):
    completes_at: datetime | None = Field(
        description="When the last call would end; null when it would not within a year, or "
        "the campaign cannot call any more."
    )
    duration_s: int | None
    expected_calls: int = Field(description="Calls the estimate expects, retries included.")
    not_estimated: int = Field(
        description="Recipients left out: deferred with no time to be due again."
    )
    assumptions: AssumptionsOut


class PreviewOut(Output):
    """What starting (or going on with) the campaign now would do; nothing is dialed or
    written to answer."""

    as_of: datetime
    status: str
    evaluated_as: str = Field(description="`running`: screened as if running now.")
    recipients: int
    callable_now: int
    deferred: list[DeferredOut]
    turned_away: list[TurnedAwayOut]
    ended: dict[str, int] = Field(description="Recipients already in a terminal state.")
    in_progress: int = Field(description="Recipients queued or on a call.")
    estimate: EstimateOut
