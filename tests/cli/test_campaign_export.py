"""``dialer campaign export``: one row per call attempt of a real run, streamed to a file or
standard output, numbers masked unless asked for."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.db.engine import session_factory
from dialer.db.models import CallAttempt
from dialer.services.export import COLUMNS, ExportFormat, attempt_pages, export_text
from tests.cli.conftest import CALLER, Dialer, create_campaign, numbers, tenant
from tests.cli.running import scheduler_running, wait_completed
from tests.e2e.fleet import place_open_now

RETRY = {"max_attempts": 2, "backoff": {"kind": "fixed", "delay": "1s"}, "jitter": 0}


@pytest.fixture
def finished(dialer: Dialer, engine: Engine) -> str:
    """A campaign of alice's, dialed to completion (some recipients twice)."""
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(
        engine, alice, numbers(6, place=place_open_now()), zone=None, retry_policy=RETRY
    )
    assert dialer("campaign", "start", campaign_id, "--user-id", "alice").exit_code == 0
    with scheduler_running(engine, seed=11):
        wait_completed(engine, campaign_id)
    return campaign_id


def _attempts(engine: Engine, campaign_id: str) -> list[CallAttempt]:
    with session_factory(engine)() as session:
        return list(
            session.scalars(
                sa.select(CallAttempt)
                .where(CallAttempt.campaign_id == campaign_id)
                .order_by(CallAttempt.id)
            )
        )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def test_csv_export_has_one_row_per_attempt_with_numbers_masked(
    dialer: Dialer, engine: Engine, finished: str, tmp_path: Path
) -> None:
    target = tmp_path / "attempts.csv"
    result = dialer("campaign", "export", finished, "--user-id", "alice", "--output", str(target))
    assert result.exit_code == 0, result.output
    attempts = _attempts(engine, finished)
    assert result.stdout.strip() == (
        f"{len(attempts)} attempts of campaign {finished} written to {target}"
    )
    with target.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == list(COLUMNS)
    assert len(rows) == len(attempts) > 6  # retries made second attempts
    for row, attempt in zip(rows, attempts, strict=True):
        assert row["attempt_id"] == str(attempt.id)
        assert row["recipient_id"] == str(attempt.recipient_id)
        masked = "+" + "*" * (len(attempt.to_number) - 5) + attempt.to_number[-4:]
        assert row["phone_number"] == masked
        assert row["attempt_number"] == str(attempt.attempt_number)
        assert row["status"] == "ended"
        assert row["outcome"] == attempt.outcome.value  # type: ignore[union-attr]
        assert row["queued_at"] == _iso(attempt.queued_at)
        assert row["started_at"] == _iso(attempt.dialed_at)
        assert row["answered_at"] == (_iso(attempt.answered_at) or "")
        assert row["ended_at"] == _iso(attempt.ended_at)
        assert row["amd"] == (attempt.answered_by or "")
        assert row["duration_s"] == ("" if attempt.duration_s is None else str(attempt.duration_s))
    assert {r["attempt_number"] for r in rows} == {"1", "2"}
    assert {r["outcome"] for r in rows} >= {"human", "busy"}
    assert not any(a.to_number in target.read_text() for a in attempts)


def test_jsonl_export_to_standard_output_with_full_numbers(
    dialer: Dialer, engine: Engine, finished: str
) -> None:
    result = dialer(
        "campaign", "export", finished, "--user-id", "alice", "--format", "jsonl",
        "--unmask-numbers",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    attempts = _attempts(engine, finished)
    assert [r["attempt_id"] for r in rows] == [a.id for a in attempts]
    assert [r["phone_number"] for r in rows] == [a.to_number for a in attempts]
    assert all(list(r) == list(COLUMNS) for r in rows)
    answered = [r for r in rows if r["outcome"] == "human"]
    assert answered
    assert all(isinstance(r["duration_s"], int) and r["answered_at"] for r in answered)
    unanswered = [r for r in rows if r["outcome"] in ("busy", "no_answer")]
    assert unanswered
    assert all(r["answered_at"] is None for r in unanswered)


def test_an_unknown_format_is_a_usage_error(dialer: Dialer, engine: Engine, tmp_path: Path) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice)
    target = tmp_path / "out.xml"
    result = dialer(
        "campaign", "export", campaign_id, "--user-id", "alice", "--format", "xml",
        "--output", str(target),
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --format: must be csv or jsonl, not 'xml'"
    assert not target.exists()


def test_an_unwritable_output_is_a_usage_error(
    dialer: Dialer, engine: Engine, tmp_path: Path
) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice)
    target = tmp_path / "no" / "such" / "dir.csv"
    result = dialer(
        "campaign", "export", campaign_id, "--user-id", "alice", "--output", str(target)
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {target}: No such file or directory"


def test_a_campaign_without_attempts_exports_the_header_only(
    dialer: Dialer, engine: Engine
) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice, numbers(2))
    result = dialer("campaign", "export", campaign_id, "--user-id", "alice")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [",".join(COLUMNS)]
    empty = dialer("campaign", "export", campaign_id, "--user-id", "alice", "--format", "jsonl")
    assert empty.stdout == ""


def test_the_export_reads_a_page_at_a_time(engine: Engine, finished: str) -> None:
    sessions = session_factory(engine)
    attempts = _attempts(engine, finished)
    pages = list(attempt_pages(sessions, finished, page_rows=2))
    assert [len(p) for p in pages[:-1]] == [2] * (len(pages) - 1)
    assert [r["attempt_id"] for p in pages for r in p] == [a.id for a in attempts]
    seen: list[int] = []
    chunks = list(
        export_text(sessions, finished, ExportFormat.CSV, page_rows=2, on_rows=seen.append)
    )
    assert len(chunks) == len(pages) + 1  # the header, then a chunk per page
    assert sum(seen) == len(attempts)
    rows = list(csv.DictReader(io.StringIO("".join(chunks))))
    assert [int(r["attempt_id"]) for r in rows] == [a.id for a in attempts]
