"""Pieces shared by several bodies: strict input, aware timestamps, pages, errors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

T = TypeVar("T")


class Input(BaseModel):
    """Request bodies reject unknown fields (a typo must not be silently ignored) and NUL
    characters anywhere, metadata included (PostgreSQL cannot store them in text)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        path = _nul_path(data)
        if path is not None:
            raise ValueError(f"{path or 'a value'} contains a NUL character")
        return data


def _nul_path(value: Any, path: str = "") -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                return here
            found = _nul_path(item, here)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None


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
