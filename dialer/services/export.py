"""A campaign's call attempts as a file: one row per attempt, CSV or JSON Lines.

Read a page of :data:`PAGE_ROWS` attempts at a time (keyset on the attempt id, the
``(campaign_id, id)`` index), each page in a short read of its own, so an export of millions
of attempts holds neither the rows in memory nor a transaction (on SQLite, the database's
write lock) for its whole length. Rows written during the export show as they are when their
page is read.

Columns (:data:`COLUMNS`): ``attempt_id``, ``recipient_id``, ``phone_number`` (masked to its
last four digits, ``+*******0123``, unless asked for in full), ``attempt_number`` (1 for a
recipient's first dial, counted across runs), ``status`` (``queued``... ``ended``), the times
``queued_at``, ``started_at`` (the dial), ``answered_at``, ``ended_at`` (ISO 8601, UTC, ``Z``),
``outcome`` (``human``, ``voicemail``, ``busy``, ``no_answer``, ``failed``, ``canceled``,
``unknown``), ``amd`` (answering-machine detection's verdict: ``human``, ``machine_end_beep``...),
``duration_s``, ``error_code`` and ``error_message`` (the provider's, numbers in it masked
too), and ``timeline``: the recipient's decisions, oldest first (each ``at``, ``kind``,
``reason``, ``until``, ``attempt_id``, ``facts``; see :mod:`dialer.calls.timeline`), an array
in JSON Lines and the same array as compact JSON in CSV; a recipient's timeline is on the row
of each of its attempts, read for a whole page in one query. A value the attempt does not have
is empty in CSV and ``null`` in JSON.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from dialer.db.models import CallAttempt
from dialer.redaction import mask_phone_numbers
from dialer.services import timeline

#: Attempts read from the database at a time.
PAGE_ROWS = 1_000

COLUMNS = (
    "attempt_id",
    "recipient_id",
    "phone_number",
    "attempt_number",
    "status",
    "queued_at",
    "started_at",
    "answered_at",
    "ended_at",
    "outcome",
    "amd",
    "duration_s",
    "error_code",
    "error_message",
    "timeline",
)


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


#: The media type of each format, for HTTP answers.
MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSONL: "application/x-ndjson",
}

_SELECTED = (
    CallAttempt.id,
    CallAttempt.recipient_id,
    CallAttempt.to_number,
    CallAttempt.attempt_number,
    CallAttempt.status,
    CallAttempt.queued_at,
    CallAttempt.dialed_at,
    CallAttempt.answered_at,
    CallAttempt.ended_at,
    CallAttempt.outcome,
    CallAttempt.answered_by,
    CallAttempt.duration_s,
    CallAttempt.error_code,
    CallAttempt.error_message,
)


def _time(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _same(text: str) -> str:
    return text


def _decision(decision: timeline.Decision) -> dict[str, Any]:
    return {
        "at": _time(decision.at),
        "kind": decision.kind,
        "reason": decision.reason,
        "until": _time(decision.until),
        "attempt_id": decision.attempt_id,
        "facts": decision.facts,
    }


def _row(values: Sequence[Any], mask: Callable[[str], str]) -> dict[str, Any]:
    (
        attempt_id, recipient_id, number, attempt_number, status, queued, dialed, answered,
        ended, outcome, amd, duration_s, error_code, error_message,
    ) = values  # fmt: skip
    return {
        "attempt_id": attempt_id,
        "recipient_id": recipient_id,
        "phone_number": mask(number),
        "attempt_number": attempt_number,
        "status": status.value,
        "queued_at": _time(queued),
        "started_at": _time(dialed),
        "answered_at": _time(answered),
        "ended_at": _time(ended),
        "outcome": outcome.value if outcome is not None else None,
        "amd": amd,
        "duration_s": duration_s,
        "error_code": error_code,
        "error_message": mask(error_message) if error_message is not None else None,
        "timeline": [],
    }


def attempt_pages(
    sessions: sessionmaker[Session],
    campaign_id: str,
    *,
    unmask_numbers: bool = False,
    page_rows: int = PAGE_ROWS,
) -> Iterator[list[dict[str, Any]]]:
    """The campaign's attempts in id order (the order they were made), a page at a time, each
    page read in a session of its own. The caller has checked the campaign is the tenant's."""
    mask = _same if unmask_numbers else mask_phone_numbers
    after = 0
    while True:
        with sessions() as session:
            page = session.execute(
                sa.select(*_SELECTED)
                .where(CallAttempt.campaign_id == campaign_id, CallAttempt.id > after)
                .order_by(CallAttempt.id)
                .limit(page_rows)
            ).all()
            timelines = timeline.of_recipients(session, [values[1] for values in page])
        if page:
            rows = [_row(values, mask) for values in page]
            for row in rows:
                row["timeline"] = [_decision(d) for d in timelines.get(row["recipient_id"], [])]
            yield rows
        if len(page) < page_rows:
            return
        after = page[-1][0]


def export_text(
    sessions: sessionmaker[Session],
    campaign_id: str,
    export_format: ExportFormat,
    *,
    unmask_numbers: bool = False,
    page_rows: int = PAGE_ROWS,
    on_rows: Callable[[int], None] = lambda _: None,
) -> Iterator[str]:
    """The export as text, a page at a time (a CSV starts with its header, even when empty);
    ``on_rows`` is told the rows of each page."""
    pages = attempt_pages(sessions, campaign_id, unmask_numbers=unmask_numbers, page_rows=page_rows)
    if export_format is ExportFormat.JSONL:
        for page in pages:
            on_rows(len(page))
            yield "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in page)
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    yield _drain(buffer)
    for page in pages:
        on_rows(len(page))
        for row in page:
            row["timeline"] = json.dumps(row["timeline"], separators=(",", ":"))
        writer.writerows(page)
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
