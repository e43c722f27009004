"""Pieces shared by several bodies: strict input, aware timestamps, pages, errors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

T = TypeVar("T")


class Input(BaseModel):
    """Request bodies reject unknown fields: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("must carry a UTC offset, e.g. 2026-12-01T09:00:00Z")
    return moment


#: A timestamp with an explicit offset; naive times are ambiguous across zones.
AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class Page(BaseModel, Generic[T]):
    """One page of a listing; pass ``next_cursor`` back as ``cursor`` for the next one."""

    data: list[T]
    next_cursor: str | None = Field(default=None, description="Opaque; absent on the last page.")


class FieldError(BaseModel):
    field: str = Field(
        description="Dotted path of the offending field, e.g. `recipients.2.phone_number`."
    )
    reason: str


class ErrorBody(BaseModel):
    """Every error answer: a message, and for 422 each offending field with its reason."""

    error: str
    message: str
    detail: list[FieldError] = Field(default_factory=list)
