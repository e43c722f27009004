"""The FastAPI application factory. ``dialer api`` serves it with uvicorn."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from dialer.api import errors
from dialer.api.context import ApiContext
from dialer.api.limits import BodyLimit
from dialer.api.routes import (
    calls,
    campaigns,
    health,
    lists,
    recipients,
    suppression,
    webhooks,
)
from dialer.clock import utc_now
from dialer.db.engine import make_engine, session_factory
from dialer.runtime import Runtime, build_runtime
from dialer.settings import Settings

DESCRIPTION = """
Outbound voice campaigns: create a campaign with its recipients, then start, pause, resume
(start again) or stop it. Authenticate every call with `Authorization: Bearer <api key>` and
`X-User-ID: <user id>` (`dialer apikey create --user-id U` prints a key).

Errors are JSON: `{"error", "message", "detail": [{"field", "reason"}]}`. Invalid input is
422 naming each field; JSON bodies are limited to 10 MiB and uploads to 512 MiB.
"""


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Callable[[], datetime] = utc_now,
    redis: Any | None = None,
    runtime_factory: Callable[[], Runtime] | None = None,
) -> FastAPI:
    """The API over ``settings``' database; tests pass their own engine and clock."""
    if engine is None:
        engine = make_engine(settings.database_url)
    if redis is None and settings.redis_url is not None:
        import redis as redis_lib

        redis = redis_lib.Redis.from_url(settings.redis_url, socket_timeout=2)
    app = FastAPI(
        title="dialer",
        version="0.1.0",
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url="/redoc",
    )
    app.state.ctx = ApiContext(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        clock=clock,
        redis=redis,
        runtime_factory=runtime_factory or _default_runtime(settings, engine, clock),
    )
    errors.install(app)
    app.add_middleware(BodyLimit)
    for module in (health, campaigns, recipients, calls, lists, suppression, webhooks):
        app.include_router(module.router)
    return app


def _default_runtime(
    settings: Settings, engine: Engine, clock: Callable[[], datetime]
) -> Callable[[], Runtime]:
    """Webhooks free slots and trigger dispatch through the same queue as the workers; in
    embedded mode (no Redis) they only record, and the scheduler process frees and refills."""

    def build() -> Runtime:
        if settings.redis_url is not None:
            from workers.celery_app import celery_queue, create_celery

            return build_runtime(
                settings,
                celery_queue(create_celery(settings), settings),
                engine=engine,
                clock=clock,
            )
        from dialer.inprocess import RecordOnlyQueue

        # Embedded mode: only the scheduler process dials (it holds the semaphore).
        return build_runtime(settings, RecordOnlyQueue(), engine=engine, clock=clock)

    return build
