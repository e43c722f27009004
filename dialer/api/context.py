"""What every request handler needs: settings, database, clock, optional Redis, and the
runtime provider webhooks hand their events to."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from dialer.concurrency.slots import CallSlots
from dialer.errors import ConfigurationError
from dialer.runtime import Runtime
from dialer.runtime.backlog import Backlog
from dialer.runtime.imports import ImportRunner
from dialer.services import suppression
from dialer.services.call_context import call_context
from dialer.settings import Settings
from dialer.telephony.base import CallContext, CallerIdStatus, TelephonyProvider
from dialer.telephony.events import ProviderEvent

log = logging.getLogger(__name__)


@dataclass
class ApiContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]
    #: A redis-py client when Redis is configured (readiness checks it).
    redis: Any | None = None
    #: Raises unless Celery's broker answers, when it is not that Redis (readiness).
    broker_check: Callable[[], None] | None = None
    #: Builds the runtime webhooks ingest through; called once, on the first callback.
    runtime_factory: Callable[[], Runtime] | None = None
    #: Work that follows an answer, off the request's thread: on Redis and the broker (fast:
    #: a slot freed, a dispatch asked for), and at the provider (a hang-up), apart, so a slow
    #: provider never holds a slot up.
    backlog: Backlog = field(default_factory=lambda: Backlog(name="slots"))
    provider_backlog: Backlog = field(default_factory=lambda: Backlog(name="provider", threads=4))
    #: Builds the provider asked about caller numbers; called once, on the first question.
    provider_factory: Callable[[], TelephonyProvider] | None = None
    #: Recipient-list imports, each on a thread of its own.
    imports: ImportRunner = field(default_factory=ImportRunner)
    _runtime: Runtime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _provider: TelephonyProvider | None = None
    _provider_lock: threading.Lock = field(default_factory=threading.Lock)

    def runtime(self) -> Runtime:
        with self._lock:
            if self._runtime is None:
                if self.runtime_factory is None:
                    raise ConfigurationError("this API process cannot ingest provider callbacks")
                self._runtime = self.runtime_factory()
            return self._runtime

    def slots(self) -> CallSlots | None:
        """The concurrency semaphore's slots, when this deployment has one every process sees
        (Redis); None in embedded mode, whose semaphore lives in the scheduler process."""
        if self.settings.embedded:
            return None
        try:
            return self.runtime().stores.slots
        except ConfigurationError:  # no runtime in this process: the database counts
            return None

    def caller_id_status(self, number: str) -> CallerIdStatus:
        """What the provider says of calling from ``number``. One question at a time: an
        adapter's HTTP session need not be thread-safe, and registrations are rare."""
        with self._provider_lock:
            if self._provider is None:
                if self.provider_factory is None:
                    raise ConfigurationError("this API process has no telephony provider")
                self._provider = self.provider_factory()
            return self._provider.caller_id_status(number)

    def request_dispatch(self, campaign_id: str) -> None:
        """Ask the workers for a dispatch of the campaign now (after a start or a resume).

        Best effort, after the answer (on the backlog): should the queue be out of reach,
        the scheduler's next tick dispatches it all the same. In embedded mode (no Redis) only
        the scheduler process dispatches: its next tick does.
        """
        if self.settings.embedded:
            return
        runtime = self.runtime()
        self.backlog.submit(
            f"dispatch of campaign {campaign_id}", lambda: runtime.queue.dispatch(campaign_id)
        )

    def hang_up_campaign(self, campaign_id: str) -> None:
        """End the campaign's calls in flight through the provider, after the answer (on the
        provider backlog): each call's end is ingested as its callback would be."""
        runtime = self.runtime()

        def hang_up() -> None:
            runtime.hang_up_campaign(campaign_id)

        if not self.provider_backlog.submit(f"hang-up of campaign {campaign_id}", hang_up):
            hang_up()  # the backlog is full: nobody else would do it; here, before answering

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until the work that followed every answer so far is done (tests, shutdown)."""
        return self.backlog.wait_idle(timeout_s) and self.provider_backlog.wait_idle(timeout_s)

    def close(self) -> None:
        """Stop the list imports, finish the backlog, then close the runtime and the provider if
        they were built."""
        self.imports.close()
        self.provider_backlog.close()
        self.backlog.close()
        if self._runtime is not None:
            self._runtime.close()
        if self._provider is not None:
            self._provider.close()

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


class ApiInbound:
    """What providers' webhook routes hand their work to: this process's runtime (built on
    the first callback) and the database."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx

    def ingest(self, attempt_id: int, event: ProviderEvent) -> None:
        """Record the event (committed on return, before the webhook answers); what follows
        runs on the backlog, so a stalled Redis never holds the answer."""
        after = self._ctx.runtime().record_event(attempt_id, event)
        self._ctx.backlog.submit(f"slots after the callback of attempt {attempt_id}", after.free)
        if after.provider is not None:
            self._ctx.provider_backlog.submit(
                f"provider after the callback of attempt {attempt_id}", after.provider
            )

    def call_context(self, attempt_id: int) -> CallContext | None:
        with self._ctx.read() as session:
            return call_context(session, attempt_id)

    def opt_out(self, attempt_id: int, digit: str) -> bool:
        with self._ctx.transaction() as session:
            added = suppression.opt_out_callee(
                session,
                attempt_id,
                f"pressed {digit} during the call",
                source=suppression.dtmf_source(attempt_id),
                now=self._ctx.clock(),
            )
        return added is not None
