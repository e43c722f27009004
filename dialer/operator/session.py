"""One operator command's database, tenant and errors.

Exit codes: 1 for what the dialer refuses (not found, another tenant's campaign, a transition
that is not legal, nothing accepted), 2 for usage and configuration (bad settings, a bad
argument, a file that cannot be read or written, a database that cannot be reached), 130
when interrupted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NoReturn, TypeVar

import sqlalchemy as sa
import typer
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from dialer.errors import ConfigurationError, Conflict, NotFound, ValidationError
from dialer.settings import Settings

_T = TypeVar("_T")

#: Exit statuses of the operator's commands.
REFUSED = 1
USAGE = 2
INTERRUPTED = 130


def fail(message: str, code: int = REFUSED) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def reported() -> Iterator[None]:
    """The dialer's errors as one line on stderr and their exit code."""
    try:
        yield
    except (NotFound, Conflict) as exc:
        fail(str(exc), REFUSED)
    except (ValidationError, ConfigurationError) as exc:
        fail(str(exc), USAGE)
    except sa.exc.DBAPIError as exc:
        # The driver's first line says what went wrong (unreachable, no such table...).
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        hint = "; is the schema built (dialer db upgrade)?" if _no_schema(exc) else ""
        fail(f"database: {first}{hint}", USAGE)


def _no_schema(exc: sa.exc.DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return "no such table" in text or ("relation" in text and "does not exist" in text)


@dataclass
class Operator:
    """What a command works with: settings, the database, and the tenant it acts for."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    tenant_id: str

    def read(self, work: Callable[[Session], _T]) -> _T:
        with self.sessions() as session:
            return work(session)

    def write(self, work: Callable[[Session], _T]) -> _T:
        with self.sessions() as session, session.begin():
            return work(session)


@contextmanager
def operating(user_id: str) -> Iterator[Operator]:
    """The settings (exit 2 when invalid), the database and the tenant of ``user_id`` (exit 1
    when there is none), for one command; the dialer's errors inside are reported."""
    from dialer.cli import _settings  # one place reads settings and sets logging up
    from dialer.db.engine import make_engine, session_factory
    from dialer.services.tenancy import tenant_id_of

    settings = _settings()
    with reported():
        engine = make_engine(settings.database_url)
        try:
            sessions = session_factory(engine)
            with sessions() as session:
                tenant_id = tenant_id_of(session, user_id)
            yield Operator(settings, engine, sessions, tenant_id)
        finally:
            engine.dispose()
