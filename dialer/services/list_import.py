"""One recipient list's import, run off the request: rows in chunks, each chunk its own
short transaction.

A chunk's numbers are parsed before its transaction begins, so the transaction only writes:
the entries (``INSERT ... ON CONFLICT DO NOTHING RETURNING``: the list's unique constraint
finds duplicates across chunks), the rejected rows, and the list's progress and heartbeat.
On SQLite, whose writers take turns, chunks are small and the import pauses between them, so
another writer waits for one chunk at most. The progress update only applies to a list
still ``importing``: once a list is marked ``failed`` (an import taken for lost, see
:mod:`dialer.services.recipient_lists`), its import stops at its next chunk.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from dialer.db.models import ListState, RecipientList, RecipientListRejection
from dialer.errors import InvalidPhoneNumber
from dialer.phone import DEFAULT_REGION, to_e164
from dialer.policy.places import parse_region
from dialer.services import consent, list_store
from dialer.services.list_csv import CsvReader
from dialer.services.list_store import Entry, Rejected
from dialer.services.recipients import (
    DUPLICATE,
    INVALID_NUMBER,
    INVALID_REGION,
    RecipientLike,
    consent_of,
)

log = logging.getLogger(__name__)

#: The CSV column that holds a recipient's region (not metadata).
REGION_COLUMN = "region"

#: Why a list failed when its import stopped before the end (process stopped or lost).
INTERRUPTED = "interrupted"
_FAILED_INTERNALLY = "internal error while importing (see the server's log)"
_REJECTIONS: Any = RecipientListRejection.__table__
_NUMBER_CHARS: int = _REJECTIONS.c.phone_number.type.length
_REASON_CHARS: int = _REJECTIONS.c.reason.type.length


@dataclass(frozen=True, slots=True)
class Pace:
    #: Rows per chunk (one transaction each).
    chunk_rows: int
    #: Pause after each chunk, in seconds, so other writers get their turn.
    pause_s: float = 0.0
    #: Write each chunk on a thread of its own while the next one is parsed.
    pipelined: bool = False


#: SQLite: a chunk's transaction holds the database's one write lock for milliseconds, and
#: the import leaves it free between chunks. PostgreSQL: row locks only; the server's work
#: on a chunk overlaps the parse of the next. A chunk is encoded (and its answer decoded) in
#: single calls that hold the GIL throughout (about 7 ms for 2,000 rows), so chunks stay
#: small enough not to hold the requests of the same process up for long.
SQLITE_PACE = Pace(chunk_rows=500, pause_s=0.01)
POSTGRES_PACE = Pace(chunk_rows=2_000, pipelined=True)


def pace_for(dialect: str) -> Pace:
    return POSTGRES_PACE if dialect == "postgresql" else SQLITE_PACE


@dataclass(frozen=True, slots=True)
class Row:
    #: CSV line number or 0-based JSON index.
    line: int
    phone_number: str
    metadata: Mapping[str, Any]
    assistant_overrides: Mapping[str, Any]
    time_zone: str | None
    #: Why the row could not be read at all (bad quoting, wrong number of fields).
    error: str | None = None
    #: The region a number without a ``+`` is a national number of.
    number_region: str = DEFAULT_REGION
    #: The recipient's own region (``US-FL``, ``FR``) as given, checked where it is added.
    region: str | None = None
    #: Consent to record for the number (CSV: the ``consent_*`` columns).
    consent: consent.ConsentLike | None = None


def csv_rows(reader: CsvReader, region: str = DEFAULT_REGION) -> Iterator[Row]:
    """The rows of a CSV: ``phone_number``, the recipient's ``region`` if that column is there
    (empty: none), the ``consent_*`` columns as the number's consent, and every other column
    as metadata; numbers without a ``+`` are national numbers of ``region``."""
    columns, phone_at = reader.columns, reader.phone_at
    region_at = columns.index(REGION_COLUMN) if REGION_COLUMN in columns else None
    consent_columns = [c for c in consent.CSV_COLUMNS if c in columns]
    for row in reader.rows():
        if row.error is not None:
            yield Row(row.line, "", {}, {}, None, error=row.error)
            continue
        values = row.values
        metadata = {
            c: v
            for i, (c, v) in enumerate(zip(columns, values, strict=True))
            if i not in (phone_at, region_at)
        }
        given = None
        if consent_columns:
            try:
                given = consent.from_columns(metadata)
            except ValueError as exc:
                yield Row(row.line, "", {}, {}, None, error=str(exc))
                continue
            for name in consent_columns:
                del metadata[name]
        explicit = values[region_at].strip() or None if region_at is not None else None
        yield Row(
            row.line,
            values[phone_at],
            metadata,
            {},
            None,
            number_region=region,
            region=explicit,
            consent=given,
        )


def json_rows(rows: Iterable[RecipientLike]) -> Iterator[Row]:
    for index, r in enumerate(rows):
        yield Row(
            index,
            r.phone_number,
            r.metadata,
            r.assistant_overrides,
            r.time_zone,
            region=r.region,
            consent=consent_of(r),
        )


class _Abandoned(Exception):
    """The list is no longer ``importing`` (marked failed meanwhile): stop without a trace."""


@dataclass(slots=True)
class _Chunk:
    entries: list[Entry]
    #: (line, number as given) of each entry, to tell duplicates afterwards.
    given: list[tuple[int, str]]
    rejections: list[Rejected]
    read: int
    #: (E.164 number, consent) of the rows that carry one, recorded for the list's tenant.
    consents: list[tuple[str, consent.ConsentLike]] = field(default_factory=list)


def run(
    sessions: sessionmaker[Session],
    list_id: str,
    rows: Iterable[Row],
    *,
    clock: Callable[[], datetime],
    stopping: threading.Event,
    pace: Pace,
) -> ListState:
    """Import ``rows`` into the list; its state at the end (``ready``, or ``failed`` with a
    reason: :data:`INTERRUPTED` when ``stopping`` was set before the end)."""

    def store(chunk: _Chunk) -> None:
        with sessions() as session, session.begin():
            _store(session, list_id, chunk, clock())

    stopped = False
    try:
        with _writer(store, pace.pipelined) as write:
            for chunk in _chunks(rows, pace.chunk_rows):
                stopped = stopping.is_set()
                if stopped:
                    break
                write(chunk)
                if pace.pause_s:
                    stopping.wait(pace.pause_s)
        if stopped:
            _finish(sessions, list_id, ListState.FAILED, INTERRUPTED, clock())
            return ListState.FAILED
        _finish(sessions, list_id, ListState.READY, None, clock())
        return ListState.READY
    except _Abandoned:
        log.info("import of list %s stopped: the list is no longer importing", list_id)
        return ListState.FAILED
    except Exception:
        log.exception("import of list %s failed", list_id)
        _finish(sessions, list_id, ListState.FAILED, _FAILED_INTERNALLY, clock())
        return ListState.FAILED


@contextmanager
def _writer(store: Callable[[_Chunk], None], pipelined: bool) -> Iterator[Callable[[_Chunk], None]]:
    """``store`` as it is, or run on a thread of its own, one chunk behind the caller: an
    error it raises comes out of the next call, or at the end of the block."""
    if not pipelined:
        yield store
        return
    pending: queue.Queue[_Chunk | None] = queue.Queue(maxsize=1)
    errors: list[BaseException] = []

    def work() -> None:
        while (chunk := pending.get()) is not None:
            if not errors:
                try:
                    store(chunk)
                except BaseException as exc:
                    errors.append(exc)

    def write(chunk: _Chunk) -> None:
        if errors:
            raise errors[0]
        pending.put(chunk)

    thread = threading.Thread(target=work, name="dialer-import-writer", daemon=True)
    thread.start()
    try:
        yield write
    finally:
        pending.put(None)
        thread.join()
    if errors:
        raise errors[0]


def _chunks(rows: Iterable[Row], size: int) -> Iterator[_Chunk]:
    chunk = _Chunk([], [], [], 0)
    seen: set[str] = set()
    for row in rows:
        _take(chunk, seen, row)
        if chunk.read >= size:
            yield chunk
            chunk, seen = _Chunk([], [], [], 0), set()
    yield chunk


def _take(chunk: _Chunk, seen: set[str], row: Row) -> None:
    """Parse one row into ``chunk``: an entry, or a rejection (``seen``: the chunk's numbers)."""
    chunk.read += 1
    if row.error is not None:
        chunk.rejections.append(_rejection(row.line, None, f"malformed-row: {row.error}"))
        return
    try:
        number = to_e164(row.phone_number, region=row.number_region)
    except InvalidPhoneNumber as exc:
        reason = f"{INVALID_NUMBER}: {exc.reason}"
        chunk.rejections.append(_rejection(row.line, row.phone_number, reason))
        return
    try:
        region = None if row.region is None else str(parse_region(row.region))
    except ValueError as exc:
        chunk.rejections.append(_rejection(row.line, row.phone_number, f"{INVALID_REGION}: {exc}"))
        return
    if row.consent is not None:
        chunk.consents.append((number, row.consent))
    if number in seen:
        chunk.rejections.append(_rejection(row.line, row.phone_number, DUPLICATE))
        return
    seen.add(number)
    chunk.given.append((row.line, row.phone_number))
    chunk.entries.append((number, row.metadata, row.assistant_overrides, row.time_zone, region))


def _rejection(line: int, given: str | None, reason: str) -> Rejected:
    return (line, None if given is None else given[:_NUMBER_CHARS], reason[:_REASON_CHARS])


def _store(session: Session, list_id: str, chunk: _Chunk, now: datetime) -> None:
    inserted = list_store.insert_entries(session, list_id, chunk.entries)
    for (line, given), entry in zip(chunk.given, chunk.entries, strict=True):
        if entry[0] not in inserted:
            chunk.rejections.append(_rejection(line, given, DUPLICATE))
    list_store.insert_rejections(session, list_id, chunk.rejections)
    if chunk.consents:
        tenant_id = session.scalar(
            sa.select(RecipientList.tenant_id).where(RecipientList.id == list_id)
        )
        if tenant_id is not None:
            consent.record_many(session, tenant_id, chunk.consents, now=now)
    progressed = session.execute(
        sa.update(RecipientList)
        .where(RecipientList.id == list_id, RecipientList.state == ListState.IMPORTING.value)
        .values(
            rows_read=RecipientList.rows_read + chunk.read,
            row_count=RecipientList.row_count + len(inserted),
            rejected_count=RecipientList.rejected_count + len(chunk.rejections),
            heartbeat_at=now,
        )
    )
    if progressed.rowcount != 1:  # type: ignore[attr-defined]
        raise _Abandoned


def _finish(
    sessions: sessionmaker[Session],
    list_id: str,
    state: ListState,
    reason: str | None,
    now: datetime,
) -> None:
    with sessions() as session, session.begin():
        session.execute(
            sa.update(RecipientList)
            .where(RecipientList.id == list_id, RecipientList.state == ListState.IMPORTING.value)
            .values(state=state.value, failure_reason=reason, heartbeat_at=now)
        )
