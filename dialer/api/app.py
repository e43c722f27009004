"""The FastAPI application factory. ``dialer api`` serves it with uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from typing import Any

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from dialer.api import errors, openapi
from dialer.api.auth import authenticator
from dialer.api.context import ApiContext, ApiInbound
from dialer.api.guard import RequestGuard
from dialer.api.routes import (
    calls,
    campaigns,
    consent,
    health,
    history,
    lists,
    metrics,
    phone_numbers,
    recipients,
    suppression,
)
from dialer.clock import utc_now
from dialer.concurrency.connection import open_redis
from dialer.db.engine import make_engine, session_factory
from dialer.observability.processes import api_scrape
from dialer.policy import calling_rules
from dialer.runtime import Runtime, api_runtime
from dialer.settings import Settings
from dialer.telephony.base import TelephonyProvider
from dialer.telephony.providers import all_packages, query_provider, webhooks_path

DESCRIPTION = """
Outbound voice campaigns: create a campaign with its recipients, then start, pause, resume
(start again) or stop it. Authenticate every call with `Authorization: Bearer <api key>` and
`X-User-ID: <user id>` (`dialer apikey create --user-id U` prints a key).

Errors are JSON: `{"error", "message", "detail": [{"field", "reason"}]}`. Invalid input is
422 naming each field. Credentials are checked before the body is read. Bodies are JSON
(`application/json`, at most 10 MiB) except the CSV upload of `POST /recipient_list`
(`multipart/form-data`, at most 512 MiB); another media type is 415
`unsupported_media_type`, a larger body 422 naming `body`.
"""


#: Database connections the API keeps: one per thread that runs a request's database work
#: (anyio's default limit, 40). Fewer, and every burst of callbacks opens and closes
#: connections beyond the pool (about a millisecond of this process's CPU each, and a new
#: PostgreSQL backend): the webhooks bench measured 574 connections opened per 4,600
#: callbacks with SQLAlchemy's default of 5 (+10 overflow), none with this.
DB_POOL_SIZE = 40


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Callable[[], datetime] = utc_now,
    redis: Any | None = None,
    runtime_factory: Callable[[], Runtime] | None = None,
    provider: TelephonyProvider | None = None,
) -> FastAPI:
    """The API over ``settings``' database; tests pass their own engine, clock, runtime and
    the provider asked about caller numbers.

    Each provider package's webhook routes are mounted under ``/webhooks/<provider>/``.
    """
    calling_rules.configure(settings.calling_rules_file)
    if engine is None:
        engine = make_engine(
            settings.database_url, pool_size=DB_POOL_SIZE, max_overflow=0, pool_timeout=30
        )
    if redis is None and not settings.embedded:
        redis = open_redis(settings)
    broker_check = None
    if not settings.embedded:
        from dialer.queue.broker import broker_apart, check_broker  # Celery: distributed only

        if broker_apart(settings):
            broker_check = partial(check_broker, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(ctx.close)  # the backlog's last work, then the runtime
        app.state.scrape.close()

    app = FastAPI(
        title="dialer",
        version="0.1.0",
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url="/redoc",
        lifespan=lifespan,
    )
    ctx = ApiContext(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        clock=clock,
        redis=redis,
        broker_check=broker_check,
        runtime_factory=runtime_factory
        or (lambda: api_runtime(settings, engine=engine, clock=clock)),
        provider_factory=_fixed(provider) or (lambda: query_provider(settings, clock)),
    )
    app.state.ctx = ctx
    app.state.scrape = api_scrape(settings, ctx.sessions, redis)
    errors.install(app)
    openapi.install(app)
    app.add_middleware(RequestGuard, routes=app.router.routes, authenticate=authenticator(ctx))
    for module in (
        health,
        campaigns,
        history,
        recipients,
        calls,
        lists,
        suppression,
        consent,
        phone_numbers,
        metrics,
    ):
        app.include_router(module.router)
    inbound = ApiInbound(ctx)
    for package in all_packages():
        webhooks = package.webhooks(settings, inbound)
        if webhooks is not None:
            app.include_router(webhooks, prefix=webhooks_path(package.name))
    return app


def _fixed(provider: TelephonyProvider | None) -> Callable[[], TelephonyProvider] | None:
    return None if provider is None else lambda: provider
