"""Free-form JSON objects a client stores with a row (recipient metadata, assistant
overrides, a retry policy): bounded in depth and size, finite numbers and Unicode text only,
so that what is stored can always be read back, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from dialer.api.json_body import depth_exceeds
from dialer.api.schemas.common import checked, has_nul


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
    path = _first_path(value, has_nul)
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
