"""One simulated call's state, and the events it reports.

Shared by the in-process simulator and the carrier server: both apply the steps of a
:class:`~dialer.telephony.simulator.plan.CallPlan` at their due times; the simulator hands
:class:`~dialer.telephony.events.ProviderEvent` values to its sink, the carrier posts Twilio's
form params (:mod:`dialer.carrier.params`). ``time_scale`` is wall (or injected-clock) seconds
per simulated second: durations reported are always simulated seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from dialer.telephony.base import CallInfo, CallStatus
from dialer.telephony.events import ProviderEvent
from dialer.telephony.simulator.plan import CallPlan, PlannedEvent

#: The account the simulator's calls belong to (shaped like a Twilio account sid).
SIMULATED_ACCOUNT_SID = "AC" + "0" * 32


@dataclass(slots=True)
class SimulatedCall:
    """Mutable: only its driver (one thread or one event loop) changes it."""

    sid: str
    to: str
    from_: str
    plan: CallPlan
    created_at: datetime
    account_sid: str = SIMULATED_ACCOUNT_SID
    time_scale: float = 1.0
    status: CallStatus = CallStatus.QUEUED
    answered_by: str | None = None
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: int | None = None
    next_sequence_number: int = 0

    @property
    def ended(self) -> bool:
        return self.status.is_terminal

    def apply(self, event: PlannedEvent, at: datetime) -> bool:
        """Move to ``event`` at ``at``; False (and no change) once the call has ended."""
        if self.ended:
            return False
        if event.kind == "amd":
            self.answered_by = event.answered_by
            return True
        if event.kind == "stream":
            return True
        assert event.status is not None
        self.status = event.status
        if event.status is CallStatus.INITIATED:
            self.started_at = at
        elif event.status is CallStatus.IN_PROGRESS:
            self.answered_at = at
        elif event.status.is_terminal:
            self.ended_at = at
            self.duration_s = event.duration_s
        return True

    def hang_up(self, at: datetime) -> PlannedEvent | None:
        """End the call now; the event to report, or None when there is nothing to report.

        Still queued: canceled, and Twilio sends no callback at all. Dialing or ringing:
        canceled. Answered: completed, with the talk time so far.
        """
        if self.ended:
            return None
        if self.status is CallStatus.IN_PROGRESS:
            assert self.answered_at is not None
            talk_s = (at - self.answered_at).total_seconds() / self.time_scale
            event = PlannedEvent(0.0, "status", CallStatus.COMPLETED, None, 200, math.ceil(talk_s))
        else:
            event = PlannedEvent(0.0, "status", CallStatus.CANCELED, None, 487, 0)
        was_queued = self.status is CallStatus.QUEUED
        self.apply(event, at)
        return None if was_queued else event

    def event(self, event: PlannedEvent, at: datetime) -> ProviderEvent:
        """The event reporting ``event``, as the provider's callback would (numbering its
        status events)."""
        if event.kind == "stream":
            return ProviderEvent(
                kind="stream",
                provider_call_id=self.sid,
                call_status=None,
                timestamp=at,
                stream_event=event.stream_event,
            )
        if event.kind == "amd":
            return ProviderEvent(
                kind="amd",
                provider_call_id=self.sid,
                call_status=None,
                answered_by=event.answered_by or "unknown",
            )
        assert event.status is not None
        terminal = event.status.is_terminal
        return ProviderEvent(
            kind="status",
            provider_call_id=self.sid,
            call_status=event.status,
            sequence_number=self.next_sequence(),
            duration_s=(event.duration_s or 0) if terminal else None,
            sip_response_code=event.sip_response_code if terminal else None,
            timestamp=at.replace(microsecond=0),  # providers report whole seconds
        )

    def next_sequence(self) -> int:
        """The sequence number of the next status event of this call (from 0)."""
        number = self.next_sequence_number
        self.next_sequence_number += 1
        return number

    def info(self) -> CallInfo:
        return CallInfo(
            provider_call_id=self.sid,
            status=self.status,
            to=self.to,
            from_=self.from_,
            answered_by=self.answered_by,
            duration_s=self.duration_s,
            created_at=self.created_at,
            started_at=self.started_at,
            ended_at=self.ended_at,
        )
