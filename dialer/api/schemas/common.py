"""Pieces shared by several bodies: strict input, aware timestamps, pages, errors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from dialer.textsafety import XML_SAFE_PATTERN, xml_forbidden

T = TypeVar("T")

#: OpenAPI extension on a field the server checks beyond what JSON Schema can state (that a
#: number exists, that a cursor is one it returned, an order between two fields): its value
#: says what is checked. A request valid by the schema is refused (422) only on such fields.
SERVER_CHECKS = "x-server-checks"


def checked(what: str) -> dict[str, Any]:
    """``json_schema_extra`` of a field checked beyond its schema."""
    return {SERVER_CHECKS: what}


#: A phone number field: normalised to E.164, refused unless dialable.
DIALABLE = checked("a valid, dialable number of its country (E.164, or national for the US)")

#: No NUL character (JSON Schema ``pattern``, as the server enforces it).
NO_NUL_PATTERN = "^[^\\u0000]*$"


def document_no_nul(schema: dict[str, Any]) -> None:
    """Every string property of an input body states, as a pattern, that NUL is refused."""
    for prop in schema.get("properties", {}).values():
        for variant in [prop, *prop.get("anyOf", [])]:
            if variant.get("type") == "string" and "pattern" not in variant:
                variant["pattern"] = NO_NUL_PATTERN


class Input(BaseModel):
    """Request bodies reject unknown fields (a typo must not be silently ignored) and NUL
    characters anywhere, metadata included (PostgreSQL cannot store them in text)."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, json_schema_extra=document_no_nul
    )

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        path = _nul_path(data)
        if path is not None:
            raise ValueError(f"{path or 'a value'} contains a NUL character")
        return data


def _nul_path(data: Any) -> str | None:
    """The first field of ``data`` whose string (or list of strings) holds a NUL, "" for
    ``data`` itself. Objects within are left to their own validation: nested bodies are
    :class:`Input` models too, and :data:`JsonObject` fields name their own NULs."""
    if isinstance(data, str):
        return "" if has_nul(data) else None
    if not isinstance(data, dict):
        return None
    for key, value in data.items():
        if has_nul(key) or has_nul(value):
            return str(key)
        if isinstance(value, list):
            for index, item in enumerate(value):
                if has_nul(item):
                    return f"{key}.{index}"
    return None


def has_nul(value: Any) -> bool:
    return isinstance(value, str) and "\x00" in value


def _xml_safe(text: str | None) -> str | None:
    if text is not None and xml_forbidden(text):
        raise ValueError(
            "contains a control character that cannot be spoken "
            "(only TAB, LF and CR are allowed below U+0020)"
        )
    return text


#: Text that reaches the call-control document (TwiML) or a provider: nothing XML 1.0
#: forbids (C0 controls other than TAB, LF, CR; U+FFFE, U+FFFF; lone surrogates).
XmlSafeText = Annotated[
    str,
    AfterValidator(_xml_safe),
    Field(json_schema_extra={"pattern": XML_SAFE_PATTERN}),
]


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
