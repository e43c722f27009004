"""One list's import, chunk by chunk: duplicates across chunks, a stop on shutdown, and an
import whose list was marked failed meanwhile."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.db.engine import session_factory
from dialer.db.models import ListState, RecipientList, RecipientListEntry, RecipientListRejection
from dialer.errors import Busy
from dialer.runtime.imports import ImportRunner
from dialer.services import list_import
from dialer.services.list_import import INTERRUPTED, Pace, Row
from tests.db import factories

NOW = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
TWO_A_CHUNK = Pace(chunk_rows=2)


def new_list(engine: Engine) -> str:
    with session_factory(engine)() as session, session.begin():
        owner = factories.tenant(session)
        row = RecipientList(
            tenant_id=owner.id,
            name="November",
            state=ListState.IMPORTING.value,
            row_count=0,
            rows_read=0,
            rejected_count=0,
            created_at=NOW,
            heartbeat_at=NOW,
        )
        session.add(row)
    return row.id


def rows(*numbers: str) -> list[Row]:
    return [Row(line + 2, n, {"n": line}, {}, None) for line, n in enumerate(numbers)]


def stored(engine: Engine, list_id: str) -> tuple[RecipientList, list[str], list[tuple[int, str]]]:
    with session_factory(engine)() as session:
        found = session.get(RecipientList, list_id)
        assert found is not None
        numbers = session.scalars(
            sa.select(RecipientListEntry.phone_number)
            .where(RecipientListEntry.list_id == list_id)
            .order_by(RecipientListEntry.id)
        ).all()
        rejected = session.execute(
            sa.select(RecipientListRejection.row, RecipientListRejection.reason)
            .where(RecipientListRejection.list_id == list_id)
            .order_by(RecipientListRejection.id)
        ).all()
        return found, list(numbers), [tuple(r) for r in rejected]  # type: ignore[misc]


def run(
    engine: Engine,
    list_id: str,
    source: list[Row] | Iterator[Row],
    stopping: threading.Event | None = None,
    pace: Pace = TWO_A_CHUNK,
) -> str:
    state = list_import.run(
        session_factory(engine),
        list_id,
        source,
        clock=lambda: NOW,
        stopping=stopping or threading.Event(),
        pace=pace,
    )
    return state.value


@pytest.mark.parametrize("pipelined", [False, True])
def test_duplicates_across_chunks_are_rejected_by_line(engine: Engine, pipelined: bool) -> None:
    list_id = new_list(engine)
    source = rows("+14155552671", "+14155552672", "(415) 555-2671", "+14155552673", "x")
    pace = Pace(chunk_rows=2, pipelined=pipelined)
    assert run(engine, list_id, source, pace=pace) == "ready"
    found, numbers, rejected = stored(engine, list_id)
    assert numbers == ["+14155552671", "+14155552672", "+14155552673"]
    assert rejected[0] == (4, "duplicate")
    assert rejected[1][0] == 6
    assert rejected[1][1].startswith("invalid-number")
    assert (found.state, found.rows_read, found.row_count, found.rejected_count) == (
        "ready",
        5,
        3,
        2,
    )


def test_a_stop_ends_the_import_after_its_chunk_with_the_list_interrupted(engine: Engine) -> None:
    list_id = new_list(engine)
    stopping = threading.Event()

    def source() -> Iterator[Row]:
        yield from rows("+14155552671", "+14155552672")
        stopping.set()  # the process is shutting down
        yield from rows("+14155552673", "+14155552674")

    assert run(engine, list_id, source(), stopping=stopping) == "failed"
    found, numbers, _ = stored(engine, list_id)
    assert (found.state, found.failure_reason) == ("failed", INTERRUPTED)
    assert (found.rows_read, numbers) == (2, ["+14155552671", "+14155552672"])


def test_an_import_whose_list_was_marked_failed_stops_and_writes_nothing_more(
    engine: Engine,
) -> None:
    list_id = new_list(engine)

    def source() -> Iterator[Row]:
        yield from rows("+14155552671", "+14155552672")
        with session_factory(engine)() as session, session.begin():  # taken for lost meanwhile
            session.execute(
                sa.update(RecipientList)
                .where(RecipientList.id == list_id)
                .values(state="failed", failure_reason=INTERRUPTED)
            )
        yield from rows("+14155552673", "+14155552674")

    assert run(engine, list_id, source()) == "failed"
    found, numbers, _ = stored(engine, list_id)
    assert (found.state, found.failure_reason, found.rows_read) == ("failed", INTERRUPTED, 2)
    assert numbers == ["+14155552671", "+14155552672"]


def test_the_runner_refuses_beyond_its_slots_and_stops_its_imports_on_close(
    engine: Engine,
) -> None:
    runner = ImportRunner(most_running=1, reserve_wait_s=0.1)
    sessions = session_factory(engine)
    list_id = new_list(engine)

    def endless() -> Iterator[Row]:
        n = 0
        while True:
            n += 1
            yield Row(n, f"+1212{2_000_000 + n % 1_000_000:07d}", {}, {}, None)

    runner.reserve().start(
        "endless import",
        lambda stopping: list_import.run(
            sessions, list_id, endless(), clock=lambda: NOW, stopping=stopping, pace=TWO_A_CHUNK
        ),
    )
    with pytest.raises(Busy):
        runner.reserve()
    runner.close(timeout_s=30.0)
    assert runner.running() == 0
    found, _, _ = stored(engine, list_id)
    assert (found.state, found.failure_reason) == ("failed", INTERRUPTED)
    with pytest.raises(Busy):
        runner.reserve()


def test_an_upload_waits_for_a_slot_an_import_frees_meanwhile() -> None:
    """A burst of small lists queues briefly for the runner instead of being refused."""
    runner = ImportRunner(most_running=1, reserve_wait_s=30.0)
    first = runner.reserve()
    threading.Timer(0.2, first.release).start()
    runner.reserve().release()  # would be Busy at once without the wait
