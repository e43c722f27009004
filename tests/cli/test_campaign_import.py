"""``dialer campaign import``: a CSV's recipients added to a campaign as the API adds a batch."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.calls import counters
from dialer.db.engine import session_factory
from dialer.db.models import Recipient
from dialer.services import campaign_import, suppression
from dialer.services.recipients import Rejection
from tests.cli.conftest import CALLER, Dialer, create_campaign, numbers, tenant

SUPPRESSED = "+13035550199"
CSV = (
    "phone_number,first_name,plan\n"
    "+12125551000,Ann,gold\n"  # already in the campaign
    "+12125552001,Bob,silver\n"
    "\n"  # blank lines are not rows
    "12,Cy,gold\n"
    "+12125552001,Bob again,gold\n"
    '"+12125552002",Dee,"gold, annual"\n'
    "+12125552003,Eve\n"
    f"{SUPPRESSED},Fay,gold\n"
    "212-555-2004,Gus,bronze\n"
)


def _recipients(engine: Engine, campaign_id: str) -> dict[str, dict[str, str]]:
    with session_factory(engine)() as session:
        rows = session.scalars(sa.select(Recipient).where(Recipient.campaign_id == campaign_id))
        return {r.phone_number: dict(r.metadata_) for r in rows}


def test_import_adds_the_good_rows_and_writes_the_rejected_ones(
    dialer: Dialer, engine: Engine, tmp_path: Path
) -> None:
    alice = tenant(engine, "alice", CALLER)
    with session_factory(engine)() as session, session.begin():
        suppression.add(session, alice, SUPPRESSED, "asked", source="api", now=datetime.now(UTC))
    campaign_id = create_campaign(engine, alice, ["+12125551000"])
    source = tmp_path / "list.csv"
    source.write_text(CSV)
    rejected_out = tmp_path / "rejected.csv"

    result = dialer(
        "campaign", "import", campaign_id, str(source), "--user-id", "alice",
        "--rejected-out", str(rejected_out),
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        f"campaign {campaign_id}: 3 of 8 rows added, 5 rejected "
        "(duplicate 2, invalid-number 1, malformed-row 1, suppressed 1)"
    )
    assert f"rejected rows written to {rejected_out}" in result.stdout
    with rejected_out.open(newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == ["row", "phone_number", "reason"]
    reasons = {int(line): (number, reason) for line, number, reason in rows[1:]}
    assert reasons[2] == ("+12125551000", "duplicate")  # in the campaign already
    assert reasons[6] == ("+12125552001", "duplicate")  # twice in the file
    assert reasons[5][0] == "12"
    assert reasons[5][1].startswith("invalid-number: ")
    assert reasons[8][0] == ""
    assert reasons[8][1] == "malformed-row: 2 fields, the header has 3"
    assert reasons[9] == (SUPPRESSED, "suppressed")
    assert set(reasons) == {2, 5, 6, 8, 9}
    added = _recipients(engine, campaign_id)
    assert added["+12125552001"] == {"first_name": "Bob", "plan": "silver"}
    assert added["+12125552002"] == {"first_name": "Dee", "plan": "gold, annual"}
    assert added["+12125552004"] == {"first_name": "Gus", "plan": "bronze"}
    assert len(added) == 4
    with session_factory(engine)() as session:
        values = counters.read(session, [campaign_id])[campaign_id]
        assert values == counters.truth(session, campaign_id)
    assert values["recipients.pending"] == 4


def test_import_lists_a_few_rejections_when_not_asked_for_a_file(
    dialer: Dialer, engine: Engine, tmp_path: Path
) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice)
    source = tmp_path / "list.csv"
    bad = "".join(f"{n},x\n" for n in range(12))
    source.write_text(f"phone_number,name\n+12125552001,Bob\n{bad}")
    result = dialer("campaign", "import", campaign_id, str(source), "--user-id", "alice")
    assert result.exit_code == 0, result.output
    assert "1 of 13 rows added, 12 rejected (invalid-number 12)" in result.stdout
    shown = [line for line in result.stderr.splitlines() if line.startswith("  line ")]
    assert len(shown) == 10
    assert shown[0].startswith("  line 3: 0 invalid-number: ")
    assert "... 2 more; --rejected-out FILE writes them all" in result.stderr


def test_import_with_nothing_accepted_fails(dialer: Dialer, engine: Engine, tmp_path: Path) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice, ["+12125551000"])
    source = tmp_path / "list.csv"
    source.write_text("phone_number\n+12125551000\nnope\n")
    rejected_out = tmp_path / "out" / "rejected.csv"
    rejected_out.parent.mkdir()
    result = dialer(
        "campaign", "import", campaign_id, str(source), "--user-id", "alice",
        "--rejected-out", str(rejected_out),
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("error: no row was accepted")
    assert len(rejected_out.read_text().splitlines()) == 3  # the header and both rows
    assert list(rejected_out.parent.iterdir()) == [rejected_out]  # no temporary left


def test_import_refuses_bad_files_and_another_tenants_campaign(
    dialer: Dialer, engine: Engine, tmp_path: Path
) -> None:
    alice = tenant(engine, "alice", CALLER)
    tenant(engine, "bob")
    campaign_id = create_campaign(engine, alice)
    missing = dialer(
        "campaign", "import", campaign_id, str(tmp_path / "nope.csv"), "--user-id", "alice"
    )
    assert missing.exit_code == 2
    assert missing.stderr.strip() == f"error: {tmp_path / 'nope.csv'}: No such file or directory"

    headless = tmp_path / "headless.csv"
    headless.write_text("number,name\n+12125552001,Bob\n")
    bad = dialer("campaign", "import", campaign_id, str(headless), "--user-id", "alice")
    assert bad.exit_code == 2
    assert bad.stderr.strip() == (
        "error: file: the header has no phone_number column; found 2 columns: 'number', 'name'"
    )

    good = tmp_path / "good.csv"
    good.write_text("phone_number\n+12125552001\n")
    rejected_out = tmp_path / "rejected.csv"
    other = dialer(
        "campaign", "import", campaign_id, str(good), "--user-id", "bob",
        "--rejected-out", str(rejected_out),
    )  # fmt: skip
    assert other.exit_code == 1
    assert other.stderr.strip() == f"error: campaign {campaign_id} not found"
    assert not rejected_out.exists()
    assert _recipients(engine, campaign_id) == {}


def test_import_on_a_terminal_shows_progress_and_the_same_result(
    dialer: Dialer, engine: Engine, tmp_path: Path
) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice)
    source = tmp_path / "list.csv"
    source.write_text("phone_number\n" + "\n".join(numbers(30, start=3000)) + "\n")
    result = dialer(
        "campaign", "import", campaign_id, str(source), "--user-id", "alice",
        env={"TTY_COMPATIBLE": "1"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"campaign {campaign_id}: 30 of 30 rows added, 0 rejected" in result.stdout
    assert len(_recipients(engine, campaign_id)) == 30


def test_a_long_file_goes_in_chunks_each_reported(engine: Engine) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice)
    rows = numbers(2_100, start=4000)  # more than a chunk on either database
    text = "phone_number,n\n" + "".join(f"{p},{i}\n" for i, p in enumerate(rows)) + "x,y\n"
    progress: list[int] = []
    rejected: list[Rejection] = []
    report = campaign_import.add_csv(
        session_factory(engine),
        alice,
        campaign_id,
        io.BytesIO(text.encode()),
        clock=lambda: datetime.now(UTC),
        on_rejected=rejected.append,
        on_progress=progress.append,
    )
    assert report.accepted == 2_100
    assert report.rows_read == sum(progress) == 2_101
    assert len(progress) > 1  # a chunk at a time
    assert [(r.row, r.phone_number) for r in rejected] == [(2_102, "x")]
    assert len(_recipients(engine, campaign_id)) == 2_100


def test_a_failure_midway_keeps_what_was_committed_and_says_so(
    dialer: Dialer, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice)
    chunks = 0
    add_chunk = campaign_import._add_chunk

    def failing_second(*args: Any, **kwargs: Any) -> list[Rejection]:
        nonlocal chunks
        chunks += 1
        if chunks == 2:
            raise sa.exc.OperationalError("INSERT", {}, Exception("server closed the connection"))
        return add_chunk(*args, **kwargs)

    monkeypatch.setattr(campaign_import, "_add_chunk", failing_second)
    source = tmp_path / "list.csv"
    source.write_text("phone_number\nnope\n" + "\n".join(numbers(2_100, start=4000)) + "\n")
    rejected_out = tmp_path / "rejected.csv"
    result = dialer(
        "campaign", "import", campaign_id, str(source), "--user-id", "alice",
        "--rejected-out", str(rejected_out),
    )  # fmt: skip
    assert result.exit_code == 2
    error, note = result.stderr.strip().splitlines()
    assert error == "error: database: server closed the connection"
    first = len(_recipients(engine, campaign_id)) + 1  # the chunk committed, with its bad row
    assert first in (500, 2_000)  # a chunk on SQLite, or on PostgreSQL
    assert note == (
        f"the first {first} rows were taken in before that: those accepted stay in the "
        f"campaign, those rejected are in {rejected_out}"
    )
    assert rejected_out.read_text().splitlines()[1].startswith("2,nope,invalid-number")


def test_national_numbers_are_read_in_the_default_region(
    dialer: Dialer, engine: Engine, tmp_path: Path
) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice, ["+12125551000"])
    source = tmp_path / "uk.csv"
    source.write_text("phone_number,name\n020 7946 0958,Ann\n+12125552001,Bob\n")

    result = dialer(
        "campaign", "import", campaign_id, str(source), "--user-id", "alice",
        "--default-region", "gb",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert set(_recipients(engine, campaign_id)) == {
        "+12125551000",
        "+442079460958",  # the national number, read as British
        "+12125552001",  # a number with its + keeps its own country
    }


def test_an_unknown_default_region_is_a_usage_error_that_adds_nothing(
    dialer: Dialer, engine: Engine, tmp_path: Path
) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice, ["+12125551000"])
    source = tmp_path / "list.csv"
    source.write_text("phone_number\n+12125552001\n")

    result = dialer(
        "campaign", "import", campaign_id, str(source), "--user-id", "alice",
        "--default-region", "XX",
    )  # fmt: skip

    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: --default-region: XX is not a region whose phone numbers are known"
    )
    assert set(_recipients(engine, campaign_id)) == {"+12125551000"}


def test_a_region_column_is_each_recipients_region_checked(
    dialer: Dialer, engine: Engine, tmp_path: Path
) -> None:
    alice = tenant(engine, "alice", CALLER)
    campaign_id = create_campaign(engine, alice)
    source = tmp_path / "regions.csv"
    source.write_text(
        "phone_number,name,region\n"
        "+12125552001,Ann,us-fl\n"
        "+12125552002,Bob,\n"
        "+12125552003,Cy,Florida\n"
        "020 7946 0958,Dee,GB\n"
    )

    result = dialer(
        "campaign", "import", campaign_id, str(source), "--user-id", "alice",
        "--default-region", "gb",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "invalid-region" in result.output
    with session_factory(engine)() as session:
        rows = session.scalars(sa.select(Recipient).where(Recipient.campaign_id == campaign_id))
        found = {r.phone_number: (r.region, dict(r.metadata_)) for r in rows}
    assert found == {
        "+12125552001": ("US-FL", {"name": "Ann"}),
        "+12125552002": (None, {"name": "Bob"}),
        "+442079460958": ("GB", {"name": "Dee"}),
    }
