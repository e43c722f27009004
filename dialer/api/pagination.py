"""Opaque keyset cursors: the position after the last row of a page, never an offset."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query

from dialer.api.schemas.common import checked
from dialer.errors import ValidationError

MAX_PAGE = 500
DEFAULT_PAGE = 50


#: The ``cursor`` query parameter: a ``next_cursor`` from the previous page, as returned.
Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=512,
        pattern="^[A-Za-z0-9_-]+$",
        description="The previous page's `next_cursor`, exactly as returned; absent at first.",
        json_schema_extra=checked("a next_cursor this listing returned"),
    ),
]


def encode(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except ValueError:
        raise ValidationError("cursor", "not a cursor this API returned") from None
    if not isinstance(position, list) or len(position) != arity:
        raise ValidationError("cursor", "not a cursor this API returned")
    return position


def decode_time(value: Any) -> datetime:
    """A timestamp a cursor carries: ISO 8601 with its UTC offset (as :func:`encode` wrote it);
    anything else, a naive time included, is not a cursor of ours."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None:
        raise ValidationError("cursor", "not a cursor this API returned")
    return moment


#: Largest id a cursor may carry (BIGINT); anything else is not ours.
MAX_ID = 2**63 - 1


def decode_id(cursor: str) -> int:
    """The row id after which a page of an id-ordered listing starts."""
    (after,) = decode(cursor, 1)
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_ID:
        raise ValidationError("cursor", "not a cursor this API returned")
    return after


def by_id(rows: Sequence[Any], limit: int) -> tuple[list[Any], str | None]:
    """A page of an id-ordered listing fetched with ``limit + 1`` rows: the page and the
    cursor of the next one (None on the last page)."""
    page = list(rows[:limit])
    return page, encode([page[-1].id]) if len(rows) > limit else None
