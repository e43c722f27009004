from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dialer.errors import ValidationError
from dialer.policy.attempt_state import AttemptStatus, Outcome
from dialer.telephony.base import CallStatus
from dialer.telephony.events import attempt_status_for, outcome_for
from dialer.telephony.twilio.callbacks import format_timestamp, parse_event, parse_timestamp

S = CallStatus


@pytest.mark.parametrize(
    ("status", "answered_by", "outcome"),
    [
        (S.COMPLETED, "human", Outcome.HUMAN),
        (S.COMPLETED, None, Outcome.HUMAN),  # no detection: somebody answered
        (S.COMPLETED, "unknown", Outcome.HUMAN),  # detection could not tell
        (S.COMPLETED, "machine_start", Outcome.VOICEMAIL),
        (S.COMPLETED, "machine_end_beep", Outcome.VOICEMAIL),
        (S.COMPLETED, "machine_end_silence", Outcome.VOICEMAIL),
        (S.COMPLETED, "machine_end_other", Outcome.VOICEMAIL),
        (S.COMPLETED, "fax", Outcome.VOICEMAIL),
        (S.COMPLETED, "machine", Outcome.VOICEMAIL),
        (S.BUSY, None, Outcome.BUSY),
        (S.NO_ANSWER, None, Outcome.NO_ANSWER),
        (S.FAILED, None, Outcome.FAILED),
        (S.CANCELED, None, Outcome.CANCELED),
        (S.BUSY, "human", Outcome.BUSY),  # a verdict never turns a failure into an answer
        (S.QUEUED, None, None),
        (S.INITIATED, None, None),
        (S.RINGING, None, None),
        (S.IN_PROGRESS, "human", None),
    ],
)
def test_outcome_mapping(status: CallStatus, answered_by: str | None, outcome: Outcome) -> None:
    assert outcome_for(status, answered_by) is outcome


@pytest.mark.parametrize(
    ("status", "attempt_status"),
    [
        (S.QUEUED, AttemptStatus.DIALING),
        (S.INITIATED, AttemptStatus.DIALING),
        (S.RINGING, AttemptStatus.RINGING),
        (S.IN_PROGRESS, AttemptStatus.IN_PROGRESS),
        *((status, AttemptStatus.ENDED) for status in S if status.is_terminal),
    ],
)
def test_attempt_status_of_each_call_status(
    status: CallStatus, attempt_status: AttemptStatus
) -> None:
    assert attempt_status_for(status) is attempt_status


def test_parses_a_final_status_callback() -> None:
    event = parse_event(
        "status",
        {
            "CallSid": "CA123",
            "CallStatus": "completed",
            "SequenceNumber": "3",
            "CallDuration": "42",
            "SipResponseCode": "200",
            "Timestamp": "Sun, 01 Mar 2026 12:00:05 +0000",
            "AccountSid": "AC1",  # extra params are ignored
        },
    )
    assert event.kind == "status"
    assert event.provider_call_id == "CA123"
    assert event.call_status is CallStatus.COMPLETED
    assert event.sequence_number == 3
    assert event.duration_s == 42
    assert event.sip_response_code == 200
    assert event.timestamp == datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    assert event.answered_by is None
    assert event.outcome is Outcome.HUMAN


def test_parses_an_amd_callback_without_call_status() -> None:
    event = parse_event("amd", {"CallSid": "CA1", "AnsweredBy": "machine_end_beep"})
    assert event.kind == "amd"
    assert event.call_status is None
    assert event.answered_by == "machine_end_beep"
    assert event.sequence_number is None
    assert event.outcome is None


def test_early_status_callback_has_no_duration_and_no_outcome() -> None:
    event = parse_event("status", {"CallSid": "CA1", "CallStatus": "ringing", "CallDuration": ""})
    assert event.duration_s is None
    assert event.outcome is None


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        ("status", {"CallStatus": "ringing"}, "CallSid"),
        ("status", {"CallSid": "CA1"}, "CallStatus"),
        ("status", {"CallSid": "CA1", "CallStatus": "ringin"}, "CallStatus"),
        (
            "status",
            {"CallSid": "CA1", "CallStatus": "busy", "SequenceNumber": "x"},
            "SequenceNumber",
        ),
        ("status", {"CallSid": "CA1", "CallStatus": "busy", "Timestamp": "yesterday"}, "Timestamp"),
        ("amd", {"CallSid": "CA1"}, "AnsweredBy"),
        ("recording", {"CallSid": "CA1"}, "kind"),
        ("amd", {"CallSid": "CA1", "AnsweredBy": "robot"}, "AnsweredBy"),
    ],
)
def test_malformed_callbacks_name_the_field(kind: str, params: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_event(kind, params)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_timestamps_round_trip_in_twilio_format() -> None:
    moment = datetime(2026, 11, 2, 9, 8, 7, tzinfo=UTC)
    text = format_timestamp(moment)
    assert text == "Mon, 02 Nov 2026 09:08:07 +0000"
    assert parse_timestamp(text) == moment
    assert parse_timestamp("2026-11-02T09:08:07+00:00") == moment
    with pytest.raises(ValidationError):
        parse_timestamp("2026-11-02T09:08:07")  # no zone: refused, not guessed
