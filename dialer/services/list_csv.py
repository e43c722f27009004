"""Reading a recipient-list CSV with bounded memory, whatever the file holds.

Every record (a row, quoted line breaks included, and the header) is held to
:data:`MAX_ROW_BYTES` while it is read: physical lines come off the file with
``readline(limit)``, so a line of 30 million fields is cut off at the cap and skipped to its
end without ever being held whole, before ``csv`` parses anything. The row is then rejected
and reading goes on at the next physical line. Fields are held to :data:`MAX_FIELD_CHARS`
and rows to :data:`MAX_COLUMNS` (``csv``'s own field limit is one setting for the whole
process, so it is left alone). Lines may end in ``\n``, ``\r\n`` or ``\r``; a line break
inside a quoted field is read as ``\n``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from dialer.errors import ValidationError

PHONE_COLUMN = "phone_number"
#: Longest record (header or row, its line breaks included), in bytes.
MAX_ROW_BYTES = 64 * 1024
#: Most fields in a record (header or row).
MAX_COLUMNS = 200
#: Longest field, in characters.
MAX_FIELD_CHARS = 10_000
#: Bytes read at a time while skipping the rest of an over-long line.
_SKIP_BYTES = 64 * 1024
_BOM = b"\xef\xbb\xbf"


#: Columns a refused header's reason lists at most, and characters of each.
_LISTED_COLUMNS = 20
_LISTED_CHARS = 40


def _found(columns: list[str]) -> str:
    """The columns of a header, as a refusal lists them (a few, each cut short)."""
    if not any(columns):
        return "the header names no column"
    shown = [repr(c if len(c) <= _LISTED_CHARS else c[:_LISTED_CHARS] + "...") for c in columns]
    more = len(shown) - _LISTED_COLUMNS
    listed = ", ".join(shown[:_LISTED_COLUMNS]) + (f" and {more} more" if more > 0 else "")
    return f"found {len(columns)} column{'s' if len(columns) != 1 else ''}: {listed}"


class _BadRecord(Exception):
    """The record being read cannot be used (too long, not UTF-8); its lines are consumed."""


@dataclass(frozen=True, slots=True)
class CsvRow:
    #: The physical line the record starts on (the header is line 1).
    line: int
    values: list[str]
    #: Why the row could not be read (then ``values`` is empty).
    error: str | None = None


class _Newlines(io.RawIOBase):
    """A file's bytes with every line ending (``\r\n``, ``\r`` as classic Mac OS spreadsheets
    write, ``\n``) read as ``\n``, so lines can be split with ``readline``."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer) - 1)
        if data.endswith(b"\r"):  # is it the first half of a \r\n?
            data += self._source.read(1)
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer[: len(data)] = data
        return len(data)


class _Lines:
    """The file's physical lines, decoded; a record longer than the cap raises
    :class:`_BadRecord` (with the rest of its line consumed). An iterator object rather than a
    generator: it goes on after raising, so ``csv`` can read the next record from it."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = io.BufferedReader(_Newlines(stream), _SKIP_BYTES)
        #: Physical lines read so far.
        self.line = 0
        #: Bytes of the record being read so far; reset by the reader at each record.
        self.record_bytes = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        room = MAX_ROW_BYTES - self.record_bytes
        raw = self._stream.readline(room + 1)
        if not raw:
            raise StopIteration
        self.line += 1
        if self.line == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        if len(raw) > room:
            if not raw.endswith(b"\n"):
                self._skip_line()
            raise _BadRecord(f"longer than {MAX_ROW_BYTES} bytes")
        self.record_bytes += len(raw)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _BadRecord(f"not UTF-8 text ({exc.reason})") from None

    def _skip_line(self) -> None:
        while (part := self._stream.readline(_SKIP_BYTES)) and not part.endswith(b"\n"):
            pass


class CsvReader:
    """A list's CSV: the header, checked when built, then :meth:`rows`.

    The header must have a ``phone_number`` column (any case) and no repeated names; UTF-8
    with or without a byte-order mark. Anything wrong with it is a :class:`ValidationError`
    naming ``file``.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._lines = _Lines(stream)
        self._reader = csv.reader(self._lines)
        header = self._next()
        if header is None:
            raise ValidationError("file", "the CSV is empty; it needs a header row")
        if header.error is not None:
            raise ValidationError("file", f"unreadable CSV header: {header.error}")
        self.columns = [c.strip() for c in header.values]
        lowered = [c.lower() for c in self.columns]
        if PHONE_COLUMN not in lowered:
            raise ValidationError(
                "file", f"the header has no {PHONE_COLUMN} column; {_found(self.columns)}"
            )
        if len(set(lowered)) != len(lowered):
            raise ValidationError("file", "the header repeats a column name")
        self.phone_at = lowered.index(PHONE_COLUMN)

    def rows(self) -> Iterator[CsvRow]:
        """The data rows (blank lines skipped), each a :class:`CsvRow`; only one record is
        held at a time."""
        width = len(self.columns)
        while (row := self._next()) is not None:
            if row.error is not None:
                yield row
            elif not any(v.strip() for v in row.values):
                continue
            elif len(row.values) != width:
                error = f"{len(row.values)} fields, the header has {width}"
                yield CsvRow(row.line, [], error)
            else:
                yield row

    def _next(self) -> CsvRow | None:
        """The next record, or None at the end of the file."""
        self._lines.record_bytes = 0
        line = self._lines.line + 1
        try:
            values = next(self._reader)
        except StopIteration:
            return None
        except _BadRecord as exc:
            return CsvRow(line, [], str(exc))
        except csv.Error as exc:
            return CsvRow(line, [], str(exc))
        if len(values) > MAX_COLUMNS:
            return CsvRow(line, [], f"more than {MAX_COLUMNS} fields")
        if any(len(v) > MAX_FIELD_CHARS for v in values):
            return CsvRow(line, [], f"a field is longer than {MAX_FIELD_CHARS} characters")
        if any("\x00" in v for v in values):
            return CsvRow(line, [], "contains a NUL character")
        return CsvRow(line, values)
