"""Reusable recipient lists, imported from CSV (streamed) or JSON."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.db.bulk import insert_ignoring_conflicts
from dialer.db.models import RecipientList, RecipientListEntry
from dialer.errors import InvalidPhoneNumber, NotFound, ValidationError
from dialer.phone import to_e164
from dialer.services.recipients import DUPLICATE, INVALID_NUMBER, RecipientLike, Rejection

#: Rows parsed, normalised and inserted together; the only rows held in memory at once.
CHUNK_ROWS = 2_000
#: Rejections listed in the answer; ``rejected_count`` counts them all.
MAX_LISTED_REJECTIONS = 1_000
PHONE_COLUMN = "phone_number"
#: Longest accepted CSV field, in characters. Checked here, row by row: ``csv``'s own limit
#: (``csv.field_size_limit``, 128 KiB by default) is one setting for the whole process.
MAX_FIELD_CHARS = 10_000
_FIELD_TOO_LONG = f"a field is longer than {MAX_FIELD_CHARS} characters"
#: Longest CSV line read, in characters. A longer one is read no further (the rest of it is
#: skipped, a piece at a time) and its row rejected: a file without line breaks is never
#: held in memory whole.
MAX_LINE_CHARS = 1_000_000
_LINE_TOO_LONG = f"a line is longer than {MAX_LINE_CHARS} characters"


@dataclass(slots=True)
class ImportResult:
    recipient_list: RecipientList
    accepted: int = 0
    rejected_count: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def reject(self, rejection: Rejection) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_LISTED_REJECTIONS:
            self.rejected.append(rejection)


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    phone_number: str
    metadata: Mapping[str, Any]
    assistant_overrides: Mapping[str, Any]
    time_zone: str | None
    #: Why the row could not be read at all (bad quoting, wrong number of fields).
    error: str | None = None


def get(session: Session, tenant_id: str, list_id: str) -> RecipientList:
    found = session.scalars(
        sa.select(RecipientList).where(
            RecipientList.id == list_id, RecipientList.tenant_id == tenant_id
        )
    ).one_or_none()
    if found is None:
        raise NotFound(f"recipient list {list_id} not found")
    return found


def create_from_rows(
    session: Session,
    tenant_id: str,
    name: str,
    rows: Iterable[RecipientLike],
    *,
    now: datetime,
) -> ImportResult:
    """A list from JSON rows (row numbers are 0-based indexes)."""
    items = (
        _Row(i, r.phone_number, r.metadata, r.assistant_overrides, r.time_zone)
        for i, r in enumerate(rows)
    )
    return _import(session, tenant_id, name, items, now=now)


def create_from_csv(
    session: Session, tenant_id: str, name: str, stream: IO[bytes], *, now: datetime
) -> ImportResult:
    """A list from a CSV upload, parsed as a stream (row numbers are CSV line numbers).

    The header must have a ``phone_number`` column; every other column becomes metadata.
    UTF-8 with or without a byte-order mark. Bad rows are reported, good rows kept.
    """
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        return _import(session, tenant_id, name, _csv_rows(text), now=now)
    except UnicodeDecodeError as exc:
        raise ValidationError("file", f"not UTF-8 text ({exc.reason})") from None
    finally:
        text.detach()


class _Lines:
    """The lines of ``text``; one longer than :data:`MAX_LINE_CHARS` is skipped, read a piece
    at a time, and stands as an empty line, with ``cut`` set until the reader clears it."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text
        self.cut = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._text.readline(MAX_LINE_CHARS)
        if not line:
            raise StopIteration
        if len(line) < MAX_LINE_CHARS or line.endswith(("\n", "\r")):
            return line
        self.cut = True
        while len(line) == MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            line = self._text.readline(MAX_LINE_CHARS)
        return "\n"


def _csv_rows(text: IO[str]) -> Iterator[_Row]:
    lines = _Lines(text)
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationError("file", "the CSV is empty; it needs a header row") from None
    except csv.Error as exc:
        raise ValidationError("file", f"unreadable CSV header: {exc}") from None
    if lines.cut:
        raise ValidationError("file", f"unreadable CSV header: {_LINE_TOO_LONG}")
    if _too_long(header):
        raise ValidationError("file", f"unreadable CSV header: {_FIELD_TOO_LONG}")
    columns = [c.strip() for c in header]
    lowered = [c.lower() for c in columns]
    if PHONE_COLUMN not in lowered:
        raise ValidationError("file", f"the header has no {PHONE_COLUMN} column")
    if len(set(lowered)) != len(lowered):
        raise ValidationError("file", "the header repeats a column name")
    phone_at = lowered.index(PHONE_COLUMN)
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            lines.cut = False
            yield _Row(reader.line_num, "", {}, {}, None, error=str(exc))
            continue
        line = reader.line_num
        if lines.cut:
            lines.cut = False
            yield _Row(line, "", {}, {}, None, error=_LINE_TOO_LONG)
            continue
        if _too_long(values):
            yield _Row(line, "", {}, {}, None, error=_FIELD_TOO_LONG)
            continue
        if not any(v.strip() for v in values):
            continue
        if any("\x00" in v for v in values):
            yield _Row(line, "", {}, {}, None, error="contains a NUL character")
            continue
        if len(values) != len(columns):
            error = f"{len(values)} fields, the header has {len(columns)}"
            yield _Row(line, "", {}, {}, None, error=error)
            continue
        metadata = {
            c: v for i, (c, v) in enumerate(zip(columns, values, strict=True)) if i != phone_at
        }
        yield _Row(line, values[phone_at], metadata, {}, None)


def _too_long(values: list[str]) -> bool:
    return any(len(v) > MAX_FIELD_CHARS for v in values)


def _import(
    session: Session, tenant_id: str, name: str, rows: Iterable[_Row], *, now: datetime
) -> ImportResult:
    recipient_list = RecipientList(tenant_id=tenant_id, name=name, row_count=0, created_at=now)
    session.add(recipient_list)
    session.flush()
    result = ImportResult(recipient_list)
    chunk: list[_Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            _insert_chunk(session, recipient_list.id, chunk, result)
            chunk = []
    if chunk:
        _insert_chunk(session, recipient_list.id, chunk, result)
    recipient_list.row_count = result.accepted
    session.flush()
    return result


def _insert_chunk(session: Session, list_id: str, chunk: list[_Row], result: ImportResult) -> None:
    values: list[dict[str, Any]] = []
    lines: list[tuple[int, str]] = []
    seen: set[str] = set()
    for row in chunk:
        if row.error is not None:
            result.reject(Rejection(row.line, None, f"malformed-row: {row.error}"))
            continue
        try:
            number = to_e164(row.phone_number)
        except InvalidPhoneNumber as exc:
            result.reject(Rejection(row.line, row.phone_number, f"{INVALID_NUMBER}: {exc.reason}"))
            continue
        if number in seen:
            result.reject(Rejection(row.line, number, DUPLICATE))
            continue
        seen.add(number)
        lines.append((row.line, number))
        values.append(
            {
                "list_id": list_id,
                "phone_number": number,
                "metadata": dict(row.metadata),
                "assistant_overrides": dict(row.assistant_overrides),
                "time_zone": row.time_zone,
            }
        )
    if not values:
        return
    table = RecipientListEntry.__table__
    stmt = insert_ignoring_conflicts(session, table).returning(table.c.phone_number)  # type: ignore[arg-type]
    inserted = set(session.scalars(stmt, values))
    for line, number in lines:
        if number in inserted:
            result.accepted += 1
        else:
            result.reject(Rejection(line, number, DUPLICATE))
