"""Reading a list's CSV: every record held to its caps while it is read, quoted line breaks
kept, the csv module's process-wide field limit left alone."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest

from dialer.errors import ValidationError
from dialer.services.list_csv import (
    MAX_COLUMNS,
    MAX_FIELD_CHARS,
    MAX_ROW_BYTES,
    CsvReader,
    CsvRow,
)
from dialer.services.list_import import Row, csv_rows

#: Not csv's default: a reader that set its own limit would change it.
OTHER_LIMIT = 200_000


class Watched(io.BytesIO):
    """A file that remembers the most bytes one read handed out."""

    most_read = 0

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        self.most_read = max(self.most_read, len(line))
        return line

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.most_read = max(self.most_read, len(data))
        return data


@pytest.fixture
def csv_limit() -> Iterator[int]:
    previous = csv.field_size_limit(OTHER_LIMIT)
    try:
        yield OTHER_LIMIT
    finally:
        csv.field_size_limit(previous)


def read(data: bytes) -> list[CsvRow]:
    return list(CsvReader(io.BytesIO(data)).rows())


def refusal(data: bytes) -> str:
    with pytest.raises(ValidationError) as refused:
        CsvReader(io.BytesIO(data))
    assert refused.value.field == "file"
    return refused.value.reason


def test_a_row_with_a_field_over_the_limit_is_rejected_and_the_rest_kept(csv_limit: int) -> None:
    at_limit, over = "x" * MAX_FIELD_CHARS, "x" * (MAX_FIELD_CHARS + 1)
    text = (
        "phone_number,note\n"
        "+14155552671,first\n"
        f"+14155552672,{over}\n"
        f"+14155552673,{at_limit}\n"
        "+14155552674,last\n"
    )
    rows = read(text.encode())
    assert [r.line for r in rows] == [2, 3, 4, 5]
    assert rows[1] == CsvRow(3, [], f"a field is longer than {MAX_FIELD_CHARS} characters")
    assert rows[2].values == ["+14155552673", at_limit]
    assert csv.field_size_limit() == csv_limit


def test_a_line_of_millions_of_fields_is_cut_at_the_cap_while_read(csv_limit: int) -> None:
    """3 million fields on one line: never read whole, rejected, and the next row is read."""
    huge = b"+14155552672" + b"," * 3_000_000 + b"\n"
    file = Watched(b"phone_number,note\n+14155552671,a\n" + huge + b"+14155552673,b\n")
    rows = list(CsvReader(file).rows())
    assert rows[0].values == ["+14155552671", "a"]
    assert rows[1] == CsvRow(3, [], f"longer than {MAX_ROW_BYTES} bytes")
    assert rows[2] == CsvRow(4, ["+14155552673", "b"])
    assert file.most_read <= MAX_ROW_BYTES + 1
    assert csv.field_size_limit() == csv_limit


def test_too_many_fields_in_a_short_row_is_rejected() -> None:
    row = "+14155552671" + "," * MAX_COLUMNS
    rows = read(f"phone_number,note\n{row}\n+14155552673,b\n".encode())
    assert rows[0] == CsvRow(2, [], f"more than {MAX_COLUMNS} fields")
    assert rows[1].values == ["+14155552673", "b"]


def test_quoted_line_breaks_stay_in_their_field_and_rows_keep_their_line() -> None:
    text = 'phone_number,note\n+14155552671,"two\nlines"\n\n+14155552673,"a ""quote"""\n'
    rows = read(text.encode())
    assert rows == [
        CsvRow(2, ["+14155552671", "two\nlines"]),
        CsvRow(5, ["+14155552673", 'a "quote"']),
    ]


def test_a_quoted_record_over_the_cap_is_rejected() -> None:
    line = "x" * 1000 + "\n"
    text = 'phone_number,note\n+14155552671,"' + line * 70 + '"\n'
    rows = read(text.encode())
    assert rows[0] == CsvRow(2, [], f"longer than {MAX_ROW_BYTES} bytes")


def test_a_row_not_in_utf8_is_rejected_and_the_rest_kept() -> None:
    rows = read(b"\xef\xbb\xbfphone_number,name\n+14155552671,Ren\xe9\n+14155552673,b\n")
    assert rows[0].line == 2
    assert rows[0].error is not None
    assert rows[0].error.startswith("not UTF-8 text")
    assert rows[1] == CsvRow(3, ["+14155552673", "b"])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the CSV is empty; it needs a header row"),
        (b"name,plan\nAda,gold\n", "the header has no phone_number column"),
        (b"phone_number,PHONE_NUMBER\n", "the header repeats a column name"),
        (b"phone_number,n\xe9\n", "unreadable CSV header: not UTF-8 text (invalid continuation"),
        (
            b"phone_number," + b"n" * MAX_ROW_BYTES + b"\n",
            f"unreadable CSV header: longer than {MAX_ROW_BYTES} bytes",
        ),
        (
            b"phone_number" + b",n" * MAX_COLUMNS + b"\n",
            f"unreadable CSV header: more than {MAX_COLUMNS} fields",
        ),
        (
            ("phone_number," + "n" * (MAX_FIELD_CHARS + 1) + "\n").encode(),
            f"unreadable CSV header: a field is longer than {MAX_FIELD_CHARS} characters",
        ),
    ],
)
def test_a_bad_header_is_refused_naming_the_file(data: bytes, reason: str) -> None:
    assert refusal(data).startswith(reason)


def test_rows_come_out_while_most_of_the_file_is_unread() -> None:
    lines = ["phone_number,n\n"] + [f"+1415555{2000 + i:04d},{i}\n" for i in range(50_000)]
    raw = io.BytesIO("".join(lines).encode())
    rows = csv_rows(CsvReader(raw))
    first = [next(rows) for _ in range(10)]
    assert first[0] == Row(2, "+14155552000", {"n": "0"}, {}, None)
    assert raw.tell() < len(raw.getvalue()) / 2


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_every_line_ending_splits_rows(ending: str) -> None:
    text = ending.join(["phone_number,n", "+14155552671,1", '+14155552672,"a', 'b"', ""])
    assert read(text.encode()) == [
        CsvRow(2, ["+14155552671", "1"]),
        CsvRow(3, ["+14155552672", "a\nb"]),
    ]
