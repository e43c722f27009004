"""Adding a CSV file's recipients to a campaign, a chunk of rows at a time.

The file is read as a recipient list's upload is (:class:`~dialer.services.list_csv.CsvReader`:
a ``phone_number`` column, every other column the recipient's metadata, bounded records), and
each chunk is added as ``POST /campaign/{id}/recipients`` adds a batch
(:func:`~dialer.services.recipients.add_batch`: normalised, deduplicated against the campaign,
screened against the do-not-call list, counted), in a transaction of its own with the
campaign locked. Chunks are sized and paced for the database as list imports are
(:func:`~dialer.services.list_import.pace_for`), so a running campaign's scheduler is never
held up for more than one chunk. Rows a chunk committed stay added if a later one fails.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

from sqlalchemy.orm import Session, sessionmaker

from dialer.errors import InvalidPhoneNumber
from dialer.phone import DEFAULT_REGION, to_e164
from dialer.services import campaigns, history, list_import
from dialer.services.list_csv import CsvReader
from dialer.services.list_import import Row
from dialer.services.recipients import Rejection, add_batch

#: The reason of a row the CSV reader could not read (bad quoting, wrong number of fields).
MALFORMED_ROW = "malformed-row"


@dataclass(slots=True)
class ImportReport:
    rows_read: int = 0
    accepted: int = 0
    rejected: int = 0
    #: Rejected rows by the kind of their reason (``invalid-number``, ``duplicate``...).
    reasons: Counter[str] = field(default_factory=Counter)


def reason_kind(reason: str) -> str:
    """The kind of a rejection's reason: ``invalid-number: too short`` -> ``invalid-number``."""
    return reason.split(":", 1)[0]


def add_csv(
    sessions: sessionmaker[Session],
    tenant_id: str,
    campaign_id: str,
    file: IO[bytes],
    *,
    clock: Callable[[], datetime],
    on_rejected: Callable[[Rejection], None] = lambda _: None,
    on_progress: Callable[[int], None] = lambda _: None,
    region: str = DEFAULT_REGION,
) -> ImportReport:
    """Add the CSV's rows to the tenant's campaign.

    :class:`~dialer.errors.NotFound` for a campaign that is not the tenant's, and a
    :class:`~dialer.errors.ValidationError` naming ``file`` for an unusable header, before
    anything is added. Each rejected row goes to ``on_rejected`` (its CSV line number, the
    number as given, the reason), in line order; ``on_progress`` is told the rows read after
    each chunk. Numbers without a ``+`` are national numbers of ``region``.
    """
    with sessions() as session:
        campaigns.get(session, tenant_id, campaign_id)
    rows = list_import.csv_rows(CsvReader(file), region)
    pace = list_import.pace_for(sessions.kw["bind"].dialect.name)
    report = ImportReport()
    for chunk in _chunks(rows, pace.chunk_rows):
        rejected = _add_chunk(sessions, tenant_id, campaign_id, chunk, clock(), report)
        for rejection in rejected:
            report.rejected += 1
            report.reasons[reason_kind(rejection.reason)] += 1
            on_rejected(rejection)
        report.rows_read += len(chunk)
        on_progress(len(chunk))
        if pace.pause_s:
            time.sleep(pace.pause_s)
    return report


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _add_chunk(
    sessions: sessionmaker[Session],
    tenant_id: str,
    campaign_id: str,
    chunk: list[Row],
    now: datetime,
    report: ImportReport,
) -> list[Rejection]:
    """Add one chunk in one transaction; its rejections, by CSV line."""
    readable = [_in_its_region(row) for row in chunk if row.error is None]
    rejected = [
        Rejection(row.line, None, f"{MALFORMED_ROW}: {row.error}")
        for row in chunk
        if row.error is not None
    ]
    if readable:
        with sessions() as session, session.begin():
            campaign = campaigns.get(session, tenant_id, campaign_id, lock=True)
            result = add_batch(session, campaign, readable, now=now)
            campaign.updated_at = now
            campaigns.recipients_added(session, campaign, history.OPERATOR, result, now=now)
        report.accepted += result.accepted
        rejected.extend(
            Rejection(readable[r.row].line, r.phone_number, r.reason) for r in result.rejected
        )
    rejected.sort(key=lambda r: r.row)
    return rejected


def _in_its_region(row: Row) -> Row:
    """The row with its number in E.164 when it reads as one in the row's region (a national
    number of ``--default-region``); as it is otherwise, for the batch to reject it."""
    if row.number_region == DEFAULT_REGION:
        return row
    try:
        number = to_e164(row.phone_number, region=row.number_region)
        return dataclasses.replace(row, phone_number=number)
    except InvalidPhoneNumber:
        return row
