"""A row of weekly hours as input gives it (a campaign's weekly schedule, a rules file)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from dialer.policy.windows import WEEKDAYS

WallTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]
#: A start of hours: a wall time before 24:00 (stated in the schema; checked below).
_START_SCHEMA: JsonDict = {"pattern": r"^([01]\d|2[0-3]):[0-5]\d$"}


class HoursSpec(BaseModel):
    """One row of weekly hours, e.g. ``{"days": ["mon", "fri"], "start": "09:00", "end": "17:00"}``.

    ``end`` at or before ``start`` crosses midnight; ``"24:00"`` ends at midnight.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: tuple[str, ...] = Field(
        default=WEEKDAYS,
        min_length=1,
        max_length=7,
        json_schema_extra={"items": {"type": "string", "enum": list(WEEKDAYS)}},
    )
    start: WallTime = Field(json_schema_extra=_START_SCHEMA)
    end: WallTime

    @model_validator(mode="after")
    def _check(self) -> HoursSpec:
        unknown = sorted({d for d in self.days if d not in WEEKDAYS})
        if unknown:
            raise ValueError(f"unknown day(s) {unknown}; use {', '.join(WEEKDAYS)}")
        if self.start == "24:00":
            raise ValueError("start must be a wall time before 24:00")
        return self
