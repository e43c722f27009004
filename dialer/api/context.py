"""What every request handler needs: settings, database, clock, optional Redis."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from dialer.errors import ConfigurationError
from dialer.runtime import Runtime
from dialer.settings import Settings


@dataclass
class ApiContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]
    #: A redis-py client when Redis is configured (readiness checks it).
    redis: Any | None = None
    #: Builds the runtime webhooks ingest through; called once, on the first callback.
    runtime_factory: Callable[[], Runtime] | None = None
    _runtime: Runtime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def runtime(self) -> Runtime:
        with self._lock:
            if self._runtime is None:
                if self.runtime_factory is None:
                    raise ConfigurationError("this API process cannot ingest provider callbacks")
                self._runtime = self.runtime_factory()
            return self._runtime

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits when the block ends normally, before the response."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx
