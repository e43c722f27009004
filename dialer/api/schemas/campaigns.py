"""Campaign bodies: the Kathan reference shape, plus dial plans, weekly hours and runs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import pydantic
from pydantic import (
    AliasChoices,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import InitErrorDetails

from dialer.api.schemas.common import (
    AwareDatetime,
    Input,
    Output,
    XmlSafeText,
    checked,
    document_no_nul,
)
from dialer.api.schemas.json_object import JsonObject
from dialer.api.schemas.recipients import RecipientIn
from dialer.policy.calling_hours import WeeklyScheduleSpec
from dialer.policy.frequency import MAX_CAP
from dialer.policy.retry import RetryPolicy
from dialer.services import greeting
from dialer.services.campaigns import REQUIRED_COLUMNS

#: Recipients accepted inline in one create or PATCH body; larger sets go through
#: ``POST /campaign/{id}/recipients`` in batches, or a recipient list.
MAX_INLINE_RECIPIENTS = 10_000


class Style(StrEnum):
    NEUTRAL = "neutral"
    FRIENDLY = "friendly"
    PROFESSIONAL = "professional"
    EMPATHETIC = "empathetic"
    ENERGETIC = "energetic"


class Responsiveness(StrEnum):
    PATIENT = "patient"
    BALANCED = "balanced"
    QUICK = "quick"


class Interruptions(StrEnum):
    ON = "on"
    OFF = "off"


class Emotions(StrEnum):
    NATURAL = "natural"
    EXPRESSIVE = "expressive"
    RESERVED = "reserved"


class SpeechSettings(Input):
    style: Style = Style.NEUTRAL
    responsiveness: Responsiveness = Responsiveness.BALANCED
    interruptions: Interruptions = Interruptions.ON
    emotions: Emotions = Emotions.NATURAL


def _retry_policy(value: dict[str, Any]) -> dict[str, Any]:
    """Validate against :class:`RetryPolicy` but keep the document as written (round trip)."""
    try:
        RetryPolicy.model_validate(value)
    except pydantic.ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'retry_policy'}: "
            + str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors()
        ]
        raise ValueError("; ".join(problems)) from None
    return value


_NUMBER = (
    "One of the tenant's phone numbers (POST /phone_number): its id, or its number in any "
    "format; stored and answered as E.164."
)
_TENANTS = checked("one of the tenant's registered phone numbers, by id or by number")


class DialPlanEntry(Input):
    """A caller number of the campaign and the recipients it calls."""

    phone_number_id: str = Field(
        min_length=1, max_length=200, description=_NUMBER, json_schema_extra=_TENANTS
    )
    caller_id_number: str | None = Field(
        default=None, max_length=200, description=_NUMBER, json_schema_extra=_TENANTS
    )
    max_concurrency: int | None = Field(
        default=None, ge=1, le=200, description="Calls in flight on this number at most."
    )
    recipients: list[RecipientIn] = Field(default_factory=list, max_length=MAX_INLINE_RECIPIENTS)


class FrequencyCapsIn(Input):
    """A campaign's own frequency caps on one number (across the tenant's campaigns): each
    optional, each at most the tenant's (it may only be stricter)."""

    attempts_per_day: int | None = Field(
        default=None,
        ge=1,
        le=MAX_CAP,
        description="Attempts in any rolling 24 hours.",
        json_schema_extra=checked("at most the tenant's"),
    )
    attempts_per_week: int | None = Field(
        default=None,
        ge=1,
        le=MAX_CAP,
        description="Attempts in any rolling 7 days.",
        json_schema_extra=checked("at most the tenant's"),
    )
    quiet_days_after_answer: int | None = Field(
        default=None,
        ge=0,
        le=MAX_CAP,
        description="Days without a new call after a person answered (0 = off).",
        json_schema_extra=checked("at least the tenant's"),
    )


_START = AliasChoices("schedule_start_time", "scheduleStartTime")
_END = AliasChoices("schedule_end_time", "scheduleEndTime")


class CampaignFields(Input):
    """Fields a client may write on create and PATCH (all optional here)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    assistant_id: XmlSafeText | None = Field(default=None, min_length=1, max_length=200)
    assistant_name: str | None = Field(default=None, max_length=200)
    phone_number_id: str | None = Field(
        default=None, min_length=1, max_length=200, description=_NUMBER, json_schema_extra=_TENANTS
    )
    caller_id_number: str | None = Field(
        default=None, max_length=200, description=_NUMBER, json_schema_extra=_TENANTS
    )
    max_concurrency: int | None = Field(default=None, ge=1, le=200)
    retry_policy: JsonObject | None = Field(
        default=None, json_schema_extra=checked("a retry policy: see the README")
    )
    speech_settings: SpeechSettings | None = None
    frequency_caps: FrequencyCapsIn | None = Field(
        default=None,
        description="Stricter caps than the tenant's on calls to one number; null: the tenant's.",
        json_schema_extra=checked("each at most the tenant's cap"),
    )
    require_consent: bool | None = Field(
        default=None,
        description="Call only numbers with a consent record (`POST /consent`); the others "
        "end `skipped` with reason `no-consent`.",
    )
    schedule_start_time: AwareDatetime | None = Field(default=None, validation_alias=_START)
    schedule_end_time: AwareDatetime | None = Field(
        default=None,
        validation_alias=_END,
        description="Must be after schedule_start_time when both are set.",
        json_schema_extra=checked("after schedule_start_time"),
    )
    weekly_schedule: WeeklyScheduleSpec | None = Field(
        default=None, description="Weekly calling hours in the campaign's IANA time zone."
    )
    campaign_context: XmlSafeText | None = Field(default=None, max_length=20_000)
    opening_message_template: XmlSafeText | None = Field(
        default=None,
        max_length=5_000,
        description="`{{key}}` placeholders are filled from each recipient's metadata.",
        json_schema_extra=checked("well-formed placeholders every recipient has values for"),
    )
    voicemail_message: XmlSafeText | None = Field(
        default=None,
        max_length=5_000,
        description="Said to answering machines; null = hang up.",
        json_schema_extra=checked("no `{{` or `}}` outside a placeholder"),
    )
    use_returning_greeting: bool | None = None
    use_short_term_summaries: bool | None = None
    short_term_summaries_limit: int | None = Field(default=None, ge=0, le=1000)
    machine_detection_timeout_seconds: int | None = Field(default=None, ge=3, le=60)
    max_abandon_rate: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Highest share of the calls answered by a person (last 30 days) that may "
        "be abandoned (the assistant not connected within 2 s); above it a running campaign "
        "pauses itself with `paused_reason` `campaign.paused.abandon-rate`. Default 0.03.",
    )
    recipient_list_id: str | None = Field(
        default=None, max_length=36, json_schema_extra=checked("one of the tenant's lists")
    )
    recipients: list[RecipientIn] | None = Field(
        default=None, max_length=MAX_INLINE_RECIPIENTS, description="Appended to the campaign."
    )

    @field_validator("retry_policy")
    @classmethod
    def _check_retry_policy(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else _retry_policy(value)

    @field_validator("opening_message_template", "voicemail_message")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        problem = greeting.check(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("schedule_end_time")
    @classmethod
    def _schedule_order(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("schedule_start_time")
        if start is not None and end is not None and end <= start:
            raise ValueError("must be after schedule_start_time")
        return end


_ReadOnly = SkipJsonSchema[Any]


class _RejectsReadOnly(Input):
    """Server-managed fields a client may echo back by mistake: named in the 422, never set."""

    id: _ReadOnly = None
    status: _ReadOnly = None
    counts: _ReadOnly = None
    created_at: _ReadOnly = None
    updated_at: _ReadOnly = None
    recipient_list_name: _ReadOnly = None
    recipient_list_row_count: _ReadOnly = None
    ended_reason: _ReadOnly = None
    current_run_id: _ReadOnly = None
    paused_reason: _ReadOnly = None

    @field_validator(
        "id",
        "status",
        "counts",
        "created_at",
        "updated_at",
        "recipient_list_name",
        "recipient_list_row_count",
        "ended_reason",
        "current_run_id",
        "paused_reason",
    )
    @classmethod
    def _read_only(cls, _value: Any, info: ValidationInfo) -> Any:
        if info.field_name == "status":
            raise ValueError("read-only; use the start, pause, save_draft and stop actions")
        raise ValueError("read-only; managed by the server")


def _not_nullable(schema: dict[str, Any]) -> None:
    """Optional fields that may not be null (the service refuses a null for a column that
    needs a value, on create as on PATCH): no null in their schema."""
    document_no_nul(schema)
    for name in REQUIRED_COLUMNS:
        prop = schema.get("properties", {}).get(name, {})
        variants = [v for v in prop.get("anyOf", []) if v.get("type") != "null"]
        if "anyOf" in prop and len(variants) == 1:
            del prop["anyOf"]
            prop.update(variants[0])
        if prop.get("default", "") is None:
            del prop["default"]


def _one_caller_schema(schema: dict[str, Any]) -> None:
    """State in the schema what :meth:`CampaignCreate._one_caller` enforces: a
    ``phone_number_id`` or a ``dial_plan`` (non-null), never both."""
    _not_nullable(schema)
    number = {
        "required": ["phone_number_id"],
        "properties": {"phone_number_id": {"type": "string"}},
    }
    plan = {"required": ["dial_plan"], "properties": {"dial_plan": {"type": "array"}}}
    schema["anyOf"] = [number, plan]
    schema["not"] = {
        "required": ["phone_number_id", "dial_plan"],
        "properties": {"phone_number_id": {"type": "string"}, "dial_plan": {"type": "array"}},
    }


def _value_error(message: str, data: Any) -> InitErrorDetails:
    return {"type": "value_error", "loc": (), "input": data, "ctx": {"error": ValueError(message)}}


class CampaignCreate(CampaignFields, _RejectsReadOnly):
    model_config = ConfigDict(json_schema_extra=_one_caller_schema)

    name: str = Field(min_length=1, max_length=200)
    assistant_id: XmlSafeText = Field(min_length=1, max_length=200)
    channel: Literal["voice"] = "voice"
    max_concurrency: int = Field(default=10, ge=1, le=200)
    dial_plan: list[DialPlanEntry] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Several caller numbers, each with its recipients; excludes phone_number_id.",
        json_schema_extra=checked("each phone_number_id at most once"),
    )

    @field_validator("dial_plan")
    @classmethod
    def _distinct_numbers(cls, value: list[DialPlanEntry] | None) -> list[DialPlanEntry] | None:
        seen: set[str] = set()
        for entry in value or ():
            if entry.phone_number_id in seen:
                raise ValueError(f"phone_number_id {entry.phone_number_id!r} appears twice")
            seen.add(entry.phone_number_id)
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _one_caller(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        """A campaign calls from ``phone_number_id`` or a ``dial_plan``, never both; said in
        the same answer as the fields' own errors, not after they are fixed."""
        problem = None
        if isinstance(data, dict):
            number, plan = data.get("phone_number_id"), data.get("dial_plan")
            if number is not None and plan is not None:
                problem = "phone_number_id and dial_plan are mutually exclusive"
            elif number is None and plan is None:
                problem = "one of phone_number_id or dial_plan is required"
        try:
            model = handler(data)
        except pydantic.ValidationError as exc:
            if problem is None:
                raise
            details: list[InitErrorDetails] = [
                {"type": e["type"], "loc": e["loc"], "input": e["input"], "ctx": e.get("ctx", {})}
                for e in exc.errors()
            ]
            details.append(_value_error(problem, data))
            try:
                combined = pydantic.ValidationError.from_exception_data(cls.__name__, details)
            except Exception:  # an error kind that cannot be rebuilt: the fields' errors alone
                raise exc from None
            raise combined from None
        if problem is not None:
            raise ValueError(problem)
        return model


class CampaignPatch(CampaignFields, _RejectsReadOnly):
    """PATCH: only the fields present change; null clears an optional field."""

    model_config = ConfigDict(json_schema_extra=_not_nullable)

    channel: _ReadOnly = None
    dial_plan: _ReadOnly = None

    @field_validator("channel", "dial_plan")
    @classmethod
    def _create_only(cls, _value: Any) -> Any:
        raise ValueError("can only be set when the campaign is created")


class Counts(Output):
    """Where the campaign's recipients are, and how its calls ended.

    The recipient-state keys (``pending`` ... ``canceled``) sum to ``total``; ``outcomes``
    counts ended call attempts. The Vapi-style counters are derived:
    ``scheduled = pending + waiting_retry``, ``queued``, ``in_progress = in_flight``,
    ``ended = done + exhausted + suppressed + skipped + canceled``,
    ``ended_voicemail = outcomes.voicemail``.
    """

    total: int
    pending: int
    queued: int
    in_flight: int
    waiting_retry: int
    done: int
    exhausted: int
    suppressed: int
    skipped: int
    canceled: int
    outcomes: dict[str, int]
    scheduled: int
    in_progress: int
    ended: int
    ended_voicemail: int
    human_answered_30d: int = Field(
        description="Calls answered by a person over the last 30 days (UTC days, today "
        "included): the base of the abandon rate."
    )
    abandoned_30d: int = Field(
        description="Of those, abandoned: the assistant's stream did not start within "
        "`DIALER_ABANDON_CONNECT_S` (2 s) of the answer, or never."
    )
    abandon_rate_30d: float | None = Field(
        description="abandoned_30d / human_answered_30d; null before any person answered."
    )


class DialPlanOut(Output):
    id: str
    phone_number_id: str
    caller_id_number: str | None
    max_concurrency: int | None
    quarantined: bool = Field(
        default=False,
        description="The number is quarantined (see `GET /phone_number`): its recipients are "
        "called from the plan's other healthy numbers.",
    )
    quarantine_reason: str | None = None


class CampaignOut(Output):
    id: str
    name: str
    assistant_id: str
    channel: str
    phone_number_id: str
    status: str = Field(description="Read-only: draft | running | paused | completed")
    max_concurrency: int
    retry_policy: dict[str, Any]
    speech_settings: dict[str, Any]
    frequency_caps: dict[str, Any] | None = Field(
        description="The campaign's own caps (the tenant's apply where it sets none)."
    )
    require_consent: bool
    assistant_name: str | None
    caller_id_number: str | None
    schedule_start_time: datetime | None
    schedule_end_time: datetime | None
    weekly_schedule: dict[str, Any] | None
    campaign_context: str | None
    opening_message_template: str | None
    voicemail_message: str | None
    use_returning_greeting: bool
    use_short_term_summaries: bool
    short_term_summaries_limit: int | None
    machine_detection_timeout_seconds: int | None
    recipient_list_id: str | None
    recipient_list_name: str | None
    recipient_list_row_count: int | None
    dial_plan: list[DialPlanOut] | None
    ended_reason: str | None
    paused_reason: str | None = Field(
        description="Why the campaign paused itself: `campaign.paused.abandon-rate`, "
        "`campaign.paused.failure-rate`, `campaign.paused.no-healthy-number`; null when "
        "paused by the user or not paused. Cleared by start."
    )
    max_abandon_rate: float
    current_run_id: str | None
    counts: Counts
    created_at: datetime
    updated_at: datetime


class RecipientBatchOut(Output):
    accepted: int
    rejected: list[RejectedRow]


class RejectedRow(Output):
    row: int = Field(description="0-based index in the batch (1-based line for CSV uploads).")
    phone_number: str | None
    reason: str


class CampaignWriteOut(CampaignOut):
    """A create or PATCH answer; carries the fate of inline recipients when some were sent."""

    recipient_batch: RecipientBatchOut | None = None


class StopIn(Input):
    """``POST /campaign/{id}/stop``'s optional body."""

    hang_up: bool = Field(
        default=False,
        strict=True,
        description="End the calls in flight now, through the provider (default: they finish).",
    )


RecipientBatchOut.model_rebuild()
