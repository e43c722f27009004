"""Engines and sessions for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

#: How long a SQLite writer waits for another one before failing, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_S = 5.0
#: ``Session.info`` keys: the mark of the sessions :func:`session_factory` makes, and the
#: work registered with :func:`before_commit`, by key.
_RUNS_WORK = "dialer.runs_work_before_commit"
_WORK = "dialer.work_before_commit"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys, WAL and a busy timeout.

    Statement parameters (phone numbers, metadata) never appear in its logs or in the text of
    its errors, which end up in logs."""
    kwargs.setdefault("hide_parameters", True)
    engine_url = sa.make_url(url)
    if engine_url.get_backend_name() == "sqlite":
        engine = sa.create_engine(engine_url, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; take control of it so that
        # SELECT-then-UPDATE sequences run inside one transaction. IMMEDIATE takes the write
        # lock up front: a deferred transaction that reads and then writes fails at once with
        # "database is locked" when another writer got in between (the busy timeout cannot
        # help it), while an immediate one waits its turn. SQLite serves one node: writers
        # take turns by design.
        sa.event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    engine = sa.create_engine(engine_url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine, PING_AFTER_IDLE_S)
    return engine


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Ping a pooled connection before reuse only when it sat idle longer than ``idle_s``.

    ``pool_pre_ping`` pings at every checkout: a round trip per transaction, which a busy
    worker (a dozen short transactions per call) pays for connections it used milliseconds
    ago. A server restart or a network cut shows on the idle ones; a failed ping makes the
    pool replace the connection. A connection that broke while in steady use fails its next
    statement instead, and SQLAlchemy then invalidates the whole pool (a disconnect error
    makes every older connection reconnect), so one operation fails, and the callers' own
    recovery (task redelivery, the outbox, the reaper) covers it.
    """

    @sa.event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DisconnectionError(f"stale pooled connection: {exc}") from exc
        if not alive:
            raise sa.exc.DisconnectionError("stale pooled connection")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions on ``engine`` that run the work registered with :func:`before_commit`.

    The listeners belong to this factory alone (SQLAlchemy gives each sessionmaker its own
    ``Session`` subclass), so no other session in the process is touched.
    """
    sessions = sessionmaker(engine, expire_on_commit=False, info={_RUNS_WORK: True})
    sa.event.listen(sessions, "before_commit", _run_work)
    sa.event.listen(sessions, "after_rollback", _forget_work)
    sa.event.listen(sessions, "after_transaction_end", _forget_work_at_end)
    return sessions


def before_commit(session: Session, key: str, work: Callable[[Session], None]) -> None:
    """Have ``work(session)`` run just before the session's transaction commits.

    ``key`` names the work and the state it gathers in ``session.info[key]``; registering a
    key again keeps one run. The work also runs when a savepoint is released, so it should
    consume the state it writes. Work and state belong to the transaction: when it ends
    (commit, rollback, close) both are forgotten, so state gathered by a transaction that did
    not commit never reaches the next one (work registered before the session began a
    transaction belongs to the next one it begins); a rollback to a savepoint forgets all of
    them, not only the savepoint's.

    Raises ``RuntimeError`` for a session that :func:`session_factory` did not make: nothing
    would run the work, and its writes would be lost without a trace.
    """
    if not session.info.get(_RUNS_WORK):
        raise RuntimeError(
            f"{key!r} needs a session made by dialer.db.engine.session_factory: this one "
            "would never run it before its commit"
        )
    session.info.setdefault(_WORK, {})[key] = work


def _run_work(session: Session) -> None:
    for work in list(session.info.get(_WORK, {}).values()):
        work(session)


def _forget_work(session: Session) -> None:
    for key in session.info.pop(_WORK, {}):
        session.info.pop(key, None)


def _forget_work_at_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        _forget_work(session)
