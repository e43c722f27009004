"""CSV list imports hold every field to MAX_FIELD_CHARS themselves, leaving the csv module's
process-wide field limit alone."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dialer.db.engine import session_factory
from dialer.errors import ValidationError
from dialer.services import recipient_lists
from dialer.services.recipient_lists import MAX_FIELD_CHARS
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
