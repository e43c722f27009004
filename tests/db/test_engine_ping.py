"""Pooled PostgreSQL connections are pinged before reuse only after sitting idle."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import dialer.db.engine as engine_module
from dialer.db.engine import make_engine


def _pid(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def _pings(engine: sa.Engine) -> list[str]:
    seen: list[str] = []
    original = engine.dialect.do_ping

    def counting(dbapi_conn: object) -> bool:
        seen.append("ping")
        return original(dbapi_conn)

    engine.dialect.do_ping = counting  # type: ignore[method-assign]
    return seen


def test_a_connection_in_steady_use_is_not_pinged(postgres_url: str) -> None:
    engine = make_engine(postgres_url, poolclass=sa.pool.QueuePool, pool_size=1)
    try:
        pings = _pings(engine)
        first = _pid(engine)
        assert [_pid(engine) for _ in range(5)] == [first] * 5
        assert pings == []
    finally:
        engine.dispose()


def test_an_idle_connection_killed_by_the_server_is_replaced_before_use(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 0.0)
    engine = make_engine(postgres_url, poolclass=sa.pool.QueuePool, pool_size=1)
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        pings = _pings(engine)
        doomed = _pid(engine)
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": doomed})
        # The pooled connection is dead; the ping at checkout finds it and the pool reconnects,
        # so the caller's statement runs on a fresh connection instead of failing.
        replacement = _pid(engine)
        assert replacement != doomed
        assert pings  # the idle connection was checked before it was handed out
    finally:
        engine.dispose()
        admin.dispose()
