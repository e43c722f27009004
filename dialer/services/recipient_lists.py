"""Reusable recipient lists: created ``importing`` by an upload, filled in the background
(:mod:`dialer.services.list_import`), then ``ready`` or ``failed``.

An import that nobody runs any more (its process died) shows as a list whose heartbeat is
older than :data:`STALE_AFTER_S`: whichever process reads it first marks it ``failed``
(``interrupted``), with an update that only applies to a list still ``importing`` with that
stale heartbeat, so processes sharing the database agree, and a live import (whose
heartbeat moves at every chunk) is never taken for lost.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import IO

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from dialer.db.models import ListState, RecipientList, RecipientListRejection
from dialer.errors import NotFound
from dialer.phone import DEFAULT_REGION
from dialer.runtime.imports import ImportRunner, Slot
from dialer.services import list_import
from dialer.services.list_csv import CsvReader
from dialer.services.list_import import INTERRUPTED, Row
from dialer.services.recipients import RecipientLike

#: An ``importing`` list whose heartbeat is older than this has lost its import. Chunks
#: commit every second or so; a SQLite writer waits 30 s at most for the lock.
STALE_AFTER_S = 120.0
#: Rejected rows read from the database at a time while streaming them.
REJECTED_PAGE = 1_000
REJECTED_COLUMNS = ("row", "phone_number", "reason")


def get(session: Session, tenant_id: str, list_id: str) -> RecipientList:
    found = session.scalars(
        sa.select(RecipientList).where(
            RecipientList.id == list_id, RecipientList.tenant_id == tenant_id
        )
    ).one_or_none()
    if found is None:
        raise NotFound(f"recipient list {list_id} not found")
    return found


def is_stale(recipient_list: RecipientList, now: datetime) -> bool:
    """Whether the list is ``importing`` with no sign of life for :data:`STALE_AFTER_S`."""
    beat = recipient_list.heartbeat_at or recipient_list.created_at
    return recipient_list.state == ListState.IMPORTING and beat < now - timedelta(
        seconds=STALE_AFTER_S
    )


def unready_reason(recipient_list: RecipientList, now: datetime) -> str | None:
    """Why the list cannot be attached to a campaign now; None when it is ``ready``."""
    if recipient_list.state == ListState.READY:
        return None
    if recipient_list.state == ListState.FAILED or is_stale(recipient_list, now):
        reason = recipient_list.failure_reason or INTERRUPTED
        return f"failed to import ({reason}); upload it again"
    return "is still importing; attach it once its state is ready"


def current(
    sessions: sessionmaker[Session], tenant_id: str, list_id: str, *, now: datetime
) -> RecipientList:
    """The tenant's list (:class:`NotFound` otherwise), marked failed first if its import
    was lost."""
    with sessions() as session:
        found = get(session, tenant_id, list_id)
    if not is_stale(found, now):
        return found
    with sessions() as session, session.begin():
        session.execute(
            sa.update(RecipientList)
            .where(
                RecipientList.id == list_id,
                RecipientList.state == ListState.IMPORTING.value,
                RecipientList.heartbeat_at == found.heartbeat_at,
            )
            .values(state=ListState.FAILED.value, failure_reason=INTERRUPTED)
        )
        return get(session, tenant_id, list_id)


def import_csv(
    sessions: sessionmaker[Session],
    runner: ImportRunner,
    tenant_id: str,
    name: str,
    file: IO[bytes],
    *,
    clock: Callable[[], datetime],
    region: str = DEFAULT_REGION,
) -> RecipientList:
    """Check the CSV's header now (a :class:`~dialer.errors.ValidationError` naming ``file``
    creates nothing), then create the list and import its rows in the background; numbers
    without a ``+`` are read as national numbers of ``region``. Owns ``file`` from the call
    on: it is closed once the import is done (or refused)."""
    try:
        reader = CsvReader(file)
        rows = list_import.csv_rows(reader, region)
        return _start(sessions, runner, tenant_id, name, rows, clock, file.close)
    except BaseException:
        file.close()
        raise


def import_rows(
    sessions: sessionmaker[Session],
    runner: ImportRunner,
    tenant_id: str,
    name: str,
    rows: Iterable[RecipientLike],
    *,
    clock: Callable[[], datetime],
) -> RecipientList:
    """A list from JSON rows (row numbers are 0-based indexes), imported in the background."""
    return _start(
        sessions, runner, tenant_id, name, list_import.json_rows(rows), clock, lambda: None
    )


def _start(
    sessions: sessionmaker[Session],
    runner: ImportRunner,
    tenant_id: str,
    name: str,
    rows: Iterable[Row],
    clock: Callable[[], datetime],
    done: Callable[[], None],
) -> RecipientList:
    slot: Slot = runner.reserve()
    try:
        now = clock()
        with sessions() as session, session.begin():
            created = RecipientList(
                tenant_id=tenant_id,
                name=name,
                state=ListState.IMPORTING.value,
                row_count=0,
                rows_read=0,
                rejected_count=0,
                created_at=now,
                heartbeat_at=now,
            )
            session.add(created)
    except BaseException:
        slot.release()
        raise
    pace = list_import.pace_for(sessions.kw["bind"].dialect.name)

    def work(stopping: threading.Event) -> None:
        try:
            list_import.run(sessions, created.id, rows, clock=clock, stopping=stopping, pace=pace)
        finally:
            done()

    slot.start(f"import of recipient list {created.id}", work)
    return created


def rejected_csv(sessions: sessionmaker[Session], list_id: str) -> Iterator[str]:
    """The list's rejected rows as CSV text (``row,phone_number,reason``), a page of rows at a
    time, each page read in a short transaction of its own."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(REJECTED_COLUMNS)
    after = 0
    while True:
        with sessions() as session:
            page = session.execute(
                sa.select(
                    RecipientListRejection.id,
                    RecipientListRejection.row,
                    RecipientListRejection.phone_number,
                    RecipientListRejection.reason,
                )
                .where(RecipientListRejection.list_id == list_id, RecipientListRejection.id > after)
                .order_by(RecipientListRejection.id)
                .limit(REJECTED_PAGE)
            ).all()
        for _, row, number, reason in page:
            writer.writerow((row, number or "", reason))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(page) < REJECTED_PAGE:
            return
        after = page[-1].id
