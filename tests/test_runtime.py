"""The runtime's warm-up: first-use costs paid before the first call, nothing written."""

from __future__ import annotations

import sqlalchemy as sa

from dialer.db.engine import make_engine
from dialer.db.models import CallAttempt, CallEvent, Campaign, Recipient
from dialer.runtime import embedded_runtime
from dialer.settings import Settings


def _rows(database_url: str) -> dict[str, int]:
    engine = make_engine(database_url)  # not the runtime's: its pool is what is looked at
    with engine.connect() as conn:
        counts = {
            model.__tablename__: conn.scalar(sa.select(sa.func.count()).select_from(model)) or 0
            for model in (Campaign, Recipient, CallAttempt, CallEvent)
        }
    engine.dispose()
    return counts


def test_warm_opens_the_pool_compiles_and_writes_nothing(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=3, max_overflow=10)
    runtime = embedded_runtime(Settings(database_url=database_url), engine=engine, threads=1)
    try:
        before = _rows(database_url)
        assert engine.pool.checkedin() == 0  # type: ignore[attr-defined]

        runtime.warm(connections=8)

        # As many connections as the pool keeps (3), not the 8 asked for: the overflow ones
        # would be closed on return anyway.
        assert engine.pool.checkedin() == 3  # type: ignore[attr-defined]
        assert _rows(database_url) == before
        # The dial path's first statement is compiled: the cache holds it.
        cache = engine._compiled_cache
        assert cache is not None
        assert any("FROM call_attempts JOIN campaigns" in c.string for c in cache.values())
        # Warming again is harmless.
        runtime.warm(connections=3)
        assert _rows(database_url) == before
    finally:
        runtime.close()
