"""One simulated call's state, and the Twilio-shaped callback params it produces.

Shared by the in-process simulator and the carrier server: both apply the steps of a
:class:`~dialer.telephony.simulation.CallPlan` at their due times and hand the params to
whoever delivers callbacks. ``time_scale`` is wall (or injected-clock) seconds per simulated
second: durations in params are always simulated seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from dialer.telephony.base import CallInfo, CallStatus
from dialer.telephony.events import format_timestamp
from dialer.telephony.simulation import CallPlan, PlannedEvent

API_VERSION = "2010-04-01"
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

    def callback_params(self, event: PlannedEvent, at: datetime) -> dict[str, str]:
        """The form params of the callback reporting ``event`` (numbers its status callbacks)."""
        if event.kind == "amd":
            params = {
                "AccountSid": self.account_sid,
                "CallSid": self.sid,
                "AnsweredBy": event.answered_by or "unknown",
            }
            if self.answered_at is not None:
                detection_s = (at - self.answered_at).total_seconds() / self.time_scale
                params["MachineDetectionDuration"] = str(round(detection_s * 1000))
            return params
        assert event.status is not None
        params = self._call_params(event.status)
        params["CallbackSource"] = "call-progress-events"
        params["SequenceNumber"] = str(self.next_sequence_number)
        params["Timestamp"] = format_timestamp(at)
        self.next_sequence_number += 1
        if event.status.is_terminal:
            params["CallDuration"] = str(event.duration_s or 0)
            if event.sip_response_code is not None:
                params["SipResponseCode"] = str(event.sip_response_code)
        return params

    def answer_params(self, answered_by: str | None = None) -> dict[str, str]:
        """The params of the request for the answer URL's TwiML, made when the call connects."""
        params = self._call_params(CallStatus.IN_PROGRESS)
        if answered_by is not None:
            params["AnsweredBy"] = answered_by
        return params

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

    def _call_params(self, status: CallStatus) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": self.sid,
            "CallStatus": status.value,
            "Called": self.to,
            "Caller": self.from_,
            "Direction": "outbound-api",
            "From": self.from_,
            "To": self.to,
        }
