"""CSV list imports hold every field to MAX_FIELD_CHARS themselves, leaving the csv module's
process-wide field limit alone, and read no line past MAX_LINE_CHARS."""

from __future__ import annotations

import csv
import io
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dialer.db.engine import session_factory
from dialer.errors import ValidationError
from dialer.services import recipient_lists
from dialer.services.recipient_lists import MAX_FIELD_CHARS, MAX_LINE_CHARS
from dialer.services.recipients import Rejection
from tests.db import factories

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
#: Not csv's default: an import that set its own limit would change it.
OTHER_LIMIT = 200_000


@pytest.fixture
def csv_limit() -> Iterator[int]:
    """The csv module's field limit, set to :data:`OTHER_LIMIT` for the test."""
    previous = csv.field_size_limit(OTHER_LIMIT)
    try:
        yield OTHER_LIMIT
    finally:
        csv.field_size_limit(previous)


def import_csv(session: Session, text: str) -> recipient_lists.ImportResult:
    owner = factories.tenant(session)
    stream = io.BytesIO(text.encode())
    return recipient_lists.create_from_csv(session, owner.id, "November", stream, now=NOW)


def test_a_row_with_a_field_over_the_limit_is_rejected_and_the_rest_kept(
    engine: Engine, csv_limit: int
) -> None:
    at_limit, over = "x" * MAX_FIELD_CHARS, "x" * (MAX_FIELD_CHARS + 1)
    text = (
        "phone_number,note\n"
        "+14155552671,first\n"
        f"+14155552672,{over}\n"
        f"+14155552673,{at_limit}\n"
        "+14155552674,last\n"
    )
    with session_factory(engine)() as session, session.begin():
        result = import_csv(session, text)
    assert result.accepted == 3
    reason = f"malformed-row: a field is longer than {MAX_FIELD_CHARS} characters"
    assert result.rejected == [Rejection(3, None, reason)]
    assert csv.field_size_limit() == csv_limit


def test_a_header_field_over_the_limit_is_refused(engine: Engine, csv_limit: int) -> None:
    text = f"phone_number,{'n' * (MAX_FIELD_CHARS + 1)}\n+14155552671,x\n"
    with (
        session_factory(engine)() as session,
        session.begin(),
        pytest.raises(ValidationError, match=f"longer than {MAX_FIELD_CHARS} characters"),
    ):
        import_csv(session, text)
    assert csv.field_size_limit() == csv_limit


class _LongLines(io.RawIOBase):
    """A CSV whose second row is one line of ``size`` bytes, made as it is read."""

    def __init__(self, size: int) -> None:
        self._parts = iter(
            [b"phone_number,note\r\n+14155552671,first\r\n+14155552672,"]
            + [b"x" * 65536] * (size // 65536)
            + [b"\r\n+14155552673,last\r\n"]
        )
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            self._pending = next(self._parts, b"")
            if not self._pending:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def test_a_line_over_the_limit_is_rejected_without_being_held_in_memory(engine: Engine) -> None:
    size = 8 * MAX_LINE_CHARS
    with session_factory(engine)() as session, session.begin():
        owner = factories.tenant(session)
        tracemalloc.start()
        try:
            result = recipient_lists.create_from_csv(
                session, owner.id, "Long", io.BufferedReader(_LongLines(size)), now=NOW
            )
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert result.accepted == 2
    reason = f"malformed-row: a line is longer than {MAX_LINE_CHARS} characters"
    assert result.rejected == [Rejection(3, None, reason)]
    assert peak < size / 2, f"{peak} bytes at the peak"


def test_a_header_line_over_the_limit_is_refused(engine: Engine) -> None:
    text = "phone_number" + " " * MAX_LINE_CHARS + "\n+14155552671\n"
    with (
        session_factory(engine)() as session,
        session.begin(),
        pytest.raises(ValidationError, match=f"longer than {MAX_LINE_CHARS} characters"),
    ):
        import_csv(session, text)
