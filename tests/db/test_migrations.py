"""The migrations build the schema from nothing, and agree with the models, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dialer.db.engine import make_engine
from dialer.db.migrate import downgrade, upgrade
from dialer.db.models import Base
from tests.conftest import BACKENDS, scratch_database_url


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url, drop = scratch_database_url(request.param, tmp_path)
    try:
        yield url
    finally:
        drop()


def _diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_upgrade_from_nothing_matches_the_models(empty_database: str) -> None:
    upgrade(empty_database)
    assert _diff(empty_database) == []
    engine = make_engine(empty_database)
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(Base.metadata.tables) <= tables


def test_downgrade_to_nothing_and_back(empty_database: str) -> None:
    upgrade(empty_database)
    downgrade(empty_database, "base")
    engine = make_engine(empty_database)
    try:
        remaining = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()
    assert remaining == set()
    upgrade(empty_database)
    assert _diff(empty_database) == []


def test_the_comparison_sees_a_difference(empty_database: str) -> None:
    """Guard against a comparison that can never fail: drop an index and it must notice."""
    upgrade(empty_database)
    engine = make_engine(empty_database)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP INDEX ix_recipients_due"))
    finally:
        engine.dispose()
    assert _diff(empty_database) != []
