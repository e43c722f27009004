"""Pieces shared by several bodies: strict input, aware timestamps, pages, errors."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from dialer.api.json_body import depth_exceeds
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
        return "" if _has_nul(data) else None
    if not isinstance(data, dict):
        return None
    for key, value in data.items():
        if _has_nul(key) or _has_nul(value):
            return str(key)
        if isinstance(value, list):
            for index, item in enumerate(value):
                if _has_nul(item):
                    return f"{key}.{index}"
    return None


def _has_nul(value: Any) -> bool:
    return isinstance(value, str) and "\x00" in value


def _first_path(value: Any, bad: Any) -> str | None:
    """The dotted path of the first value or key for which ``bad`` holds. Iterative: the
    body's depth is bounded, but no walk here should depend on the stack."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if bad(item):
            return path
        if isinstance(item, dict):
            for key, child in reversed(item.items()):
                here = f"{path}.{key}" if path else str(key)
                if bad(key):
                    return here
                stack.append((child, here))
        elif isinstance(item, list):
            for index in reversed(range(len(item))):
                stack.append((item[index], f"{path}.{index}" if path else str(index)))
    return None


#: Deepest nesting of a JSON object field (metadata, assistant overrides, retry policy):
#: the object itself is level 1.
MAX_JSON_DEPTH = 16
#: Largest JSON object field, serialized as compact UTF-8 JSON, in bytes.
MAX_JSON_BYTES = 64 * 1024


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_lone_surrogate(value: Any) -> bool:
    """A JSON escape such as ``\\ud800`` alone: no UTF-8 (so no database) can hold it."""
    return isinstance(value, str) and _SURROGATE.search(value) is not None


def _non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _bounded_object(value: dict[str, Any]) -> dict[str, Any]:
    path = _first_path(value, _has_nul)
    if path is not None:
        raise ValueError(f"a NUL character at {path}")
    path = _first_path(value, _has_lone_surrogate)
    if path is not None:
        raise ValueError(f"a lone UTF-16 surrogate (not Unicode text) at {path}")
    path = _first_path(value, _non_finite)
    if path is not None:
        where = f" at {path}" if path else ""
        raise ValueError(f"a non-finite number{where} (NaN, Infinity or beyond ±1.8e308)")
    if depth_exceeds(value, MAX_JSON_DEPTH):
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_JSON_BYTES:
        raise ValueError(f"{size} bytes as JSON; at most {MAX_JSON_BYTES}")
    return value


#: A free-form JSON object a client stores with a row: bounded so that it can always be read
#: back, and stored the same on SQLite and PostgreSQL (which cannot hold non-finite numbers).
JsonObject = Annotated[
    dict[str, Any],
    AfterValidator(_bounded_object),
    Field(
        description=(
            f"A JSON object, at most {MAX_JSON_DEPTH} levels deep and {MAX_JSON_BYTES} bytes "
            "as JSON; no NUL character, finite numbers only."
        ),
        json_schema_extra=checked(
            f"at most {MAX_JSON_DEPTH} levels and {MAX_JSON_BYTES} bytes; no NUL character"
        ),
    ),
]


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
