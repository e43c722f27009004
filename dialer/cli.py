"""The ``dialer`` command: thin wrappers that parse arguments and call library functions."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import typer

from dialer.clock import utc_now
from dialer.errors import ConfigurationError, Conflict, NotFound
from dialer.observability import logs
from dialer.settings import Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from dialer.policy.frequency import FrequencyCaps

_T = TypeVar("_T")

#: Pause before a worker that stopped without being asked to starts again, in seconds.
WORKER_RESTART_PAUSE_S = 1.0

app = typer.Typer(help="Self-hosted outbound dialing for voice campaigns.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
apikey_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    logs.configure(settings.log_level, settings.log_format)
    return settings


@app.command("settings")
def show_settings() -> None:
    """Validate the DIALER_* settings and print them (secrets masked)."""
    typer.echo(json.dumps(_settings().redacted(), indent=2))


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Option("head", help="Alembic revision to reach.")) -> None:
    """Build or migrate the schema of DIALER_DATABASE_URL."""
    from dialer.db.migrate import upgrade

    upgrade(_settings().database_url, revision)
    typer.echo(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(
    revision: str = typer.Argument(..., help="Alembic revision to go back to."),
) -> None:
    """Migrate the schema of DIALER_DATABASE_URL back to REVISION."""
    from dialer.db.migrate import downgrade

    downgrade(_settings().database_url, revision)
    typer.echo(f"database at {revision}")


@app.command()
def demo(
    recipients: int = typer.Option(30, help="Recipients to call."),
    time_scale: float = typer.Option(0.01, help="Wall seconds per simulated second."),
) -> None:
    """Run a whole campaign on the embedded defaults (SQLite, simulator) and report it."""
    from dialer.demo import run_demo

    result = run_demo(
        _settings().database_url, typer.echo, recipients=recipients, time_scale=time_scale
    )
    if result.status != "completed":
        raise typer.Exit(1)


@apikey_app.command("create")
def apikey_create(
    user_id: str = typer.Option(..., "--user-id", help="The X-User-ID the key is used with."),
) -> None:
    """Create an API key for USER_ID and print it. It is shown once; only its hash is kept."""
    from dialer.db.engine import make_engine, session_factory
    from dialer.services.tenancy import issue_key

    engine = make_engine(_settings().database_url)
    with session_factory(engine)() as session, session.begin():
        issued = issue_key(session, user_id, now=utc_now())
    engine.dispose()
    typer.echo(issued.key)


@apikey_app.command("list")
def apikey_list(
    user_id: str = typer.Option(..., "--user-id", help="The user id whose keys to list."),
) -> None:
    """List USER_ID's keys: prefix, created, revoked (never the key or its hash)."""
    from dialer.services.api_keys import list_keys

    keys = _with_session(lambda session: list_keys(session, user_id))
    typer.echo("prefix\tcreated\trevoked")
    for key in keys:
        revoked = key.revoked_at.isoformat() if key.revoked_at else "-"
        typer.echo(f"{key.prefix}\t{key.created_at.isoformat()}\t{revoked}")


@apikey_app.command("revoke")
def apikey_revoke(
    key_prefix: str = typer.Argument(..., help="The key's prefix (as listed), or the key."),
) -> None:
    """Revoke the key KEY_PREFIX names; requests with it answer 401 from now on."""
    from dialer.services.api_keys import revoke

    key = _with_session(lambda session: revoke(session, key_prefix, now=utc_now()))
    assert key.revoked_at is not None
    typer.echo(f"revoked {key.prefix} of {key.user_id} at {key.revoked_at.isoformat()}")


def _with_session(work: Callable[[Session], _T]) -> _T:
    """``work`` in one transaction on DIALER_DATABASE_URL; a NotFound or Conflict it raises
    is printed, and the command exits with status 1."""
    from dialer.db.engine import make_engine, session_factory

    engine = make_engine(_settings().database_url)
    try:
        with session_factory(engine)() as session, session.begin():
            return work(session)
    except (NotFound, Conflict) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


@app.command()
def api(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, help="Worker processes."),
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, interactive docs at /docs)."""
    import uvicorn

    settings = _settings()
    logging_level = settings.log_level.lower()
    uvicorn.run(
        "dialer.api.main:app",
        host=host,
        port=port,
        workers=workers,
        log_level=logging_level,
        log_config=logs.uvicorn_log_config(settings.log_level, settings.log_format),
        proxy_headers=True,
    )


@app.command()
def worker(
    concurrency: int = typer.Option(16, help="Tasks run at once (threads, or processes)."),
    queues: str = typer.Option("dial,events", help="Queues to consume."),
    pool: str = typer.Option(
        "threads", help="Celery pool: threads (the default) or prefork (one process a task)."
    ),
    hostname: str | None = typer.Option(
        None,
        "--hostname",
        "-n",
        help="Celery node name (default dialer-PID@HOST, unique per process); %h is the host "
        "name, %n its first part, %d its domain: one name per worker on a host, e.g. "
        "worker2@%h.",
    ),
    events: bool = typer.Option(
        False, "--events", "-E", help="Send task events (for Flower and celery events)."
    ),
) -> None:
    """Run a Celery worker: dial tasks and slot-freed dispatch (needs DIALER_REDIS_URL).

    Celery's broker is DIALER_BROKER_URL (Redis or RabbitMQ), Redis's by default.

    The tasks wait on the provider's API and the database far more than they compute, so one
    process runs them in threads, sharing one runtime (pools of connections, the simulator);
    run one worker per core for CPU. ``prefork`` isolates each task in a process, at the
    price of a process per concurrent task and a pipe hop per task.
    """
    settings = _settings()
    if settings.embedded:
        typer.echo("error: DIALER_REDIS_URL must be set to run workers", err=True)
        raise typer.Exit(2)
    from workers.celery_app import THREAD_SWITCH_INTERVAL_S, create_worker, run_worker

    if pool == "threads":
        sys.setswitchinterval(THREAD_SWITCH_INTERVAL_S)
    # JSON logs: no banner (it is not a log line).
    quiet = ["--quiet"] if logs.resolve(settings.log_format) == "json" else []
    argv = [
        *quiet,
        "worker",
        f"--concurrency={concurrency}",
        f"--pool={pool}",
        f"--queues={queues}",
        f"--loglevel={settings.log_level}",
        "--without-gossip",
        "--without-mingle",
    ]
    if hostname is not None:
        argv.append(f"--hostname={hostname}")
    if events:
        argv.append("--events")
    if run_worker(create_worker(settings), argv):
        return
    # Not asked to stop: start again as a new process image (same pid, clean state), after
    # a pause so a broker still down is not hammered.
    logging.getLogger("dialer.worker").error("worker stopped without being asked to; restarting")
    time.sleep(WORKER_RESTART_PAUSE_S)
    os.execv(sys.executable, [sys.executable, "-m", "dialer", *sys.argv[1:]])


@app.command()
def scheduler(
    interval: float | None = typer.Option(None, help="Seconds between ticks."),
) -> None:
    """Run the scheduler: dispatch due recipients, reconcile slots, reap stuck calls.

    With DIALER_REDIS_URL it enqueues Celery dial tasks; without (embedded mode) it also
    dials, in this process, with the in-memory semaphore: run only one then.
    """
    import signal
    import threading

    from dialer.observability.processes import scheduler_exporter
    from dialer.runtime import scheduler_runtime
    from scheduler.loop import SchedulerLoop

    settings = _settings()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runtime = scheduler_runtime(settings)
    exporter = scheduler_exporter(settings, runtime)
    loop = SchedulerLoop(
        runtime,
        interval_s=interval or settings.scheduler_interval_s,
        reconcile_interval_s=settings.reconcile_interval_s,
        # Embedded: the API records callbacks, this process frees their calls' slots.
        free_ended_each_tick=settings.embedded,
    )
    try:
        loop.run(stop)
    finally:
        if exporter is not None:
            exporter.close()
        runtime.close()


tenant_app = typer.Typer(help="Tenants and their limits.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")


@tenant_app.command("set")
def tenant_set(
    user_id: str = typer.Option(..., "--user-id", help="The tenant's X-User-ID."),
    max_concurrency: str | None = typer.Option(
        None,
        "--max-concurrency",
        help="Calls in flight across all its campaigns (a whole number >= 1); 'none' removes "
        "the cap.",
    ),
    max_cps: str | None = typer.Option(
        None,
        "--max-cps",
        help="Call starts per second (> 0, fractions allowed), on top of its fair share of the "
        "account; 'none' removes the cap.",
    ),
    attempts_per_day: str | None = typer.Option(
        None,
        "--attempts-per-day",
        help="Call attempts to one number in any rolling 24 hours across its campaigns (a "
        "whole number >= 1); 'default' takes DIALER_CAP_ATTEMPTS_PER_DAY.",
    ),
    attempts_per_week: str | None = typer.Option(
        None,
        "--attempts-per-week",
        help="Call attempts to one number in any rolling 7 days across its campaigns (>= 1); "
        "'default' takes DIALER_CAP_ATTEMPTS_PER_WEEK.",
    ),
    quiet_days_after_answer: str | None = typer.Option(
        None,
        "--quiet-days-after-answer",
        help="Days without a new call to a number after a person answered it (0 = off); "
        "'default' takes DIALER_CAP_QUIET_DAYS_AFTER_ANSWER.",
    ),
    create: bool = typer.Option(False, "--create", help="Create the tenant if it has none yet."),
) -> None:
    """Set a tenant's limits (those not given are left as they are), from its next call on."""
    from dialer.calls.config import default_caps
    from dialer.db.engine import make_engine, session_factory
    from dialer.errors import NotFound, ValidationError
    from dialer.services import tenant_limits as limits

    caps_given = (attempts_per_day, attempts_per_week, quiet_days_after_answer)
    if max_concurrency is None and max_cps is None and all(v is None for v in caps_given):
        typer.echo(
            "error: give --max-concurrency, --max-cps, --attempts-per-day, "
            "--attempts-per-week or --quiet-days-after-answer",
            err=True,
        )
        raise typer.Exit(2)
    try:
        concurrency = (
            limits.KEEP
            if max_concurrency is None
            else limits.parse_max_concurrency(max_concurrency)
        )
        cps = limits.KEEP if max_cps is None else limits.parse_max_cps(max_cps)
        per_day, per_week, quiet_days = (
            limits.KEEP if text is None else limits.parse_frequency_cap(name, text, least=least)
            for name, text, least in (
                ("attempts_per_day", attempts_per_day, 1),
                ("attempts_per_week", attempts_per_week, 1),
                ("quiet_days_after_answer", quiet_days_after_answer, 0),
            )
        )
    except ValidationError as exc:
        typer.echo(f"error: --{exc.field.replace('_', '-')}: {exc.reason}", err=True)
        raise typer.Exit(2) from None
    engine = make_engine(_settings().database_url)
    try:
        with session_factory(engine)() as session, session.begin():
            after, created = limits.set_limits(
                session,
                user_id,
                max_concurrency=concurrency,
                max_cps=cps,
                attempts_per_day=per_day,
                attempts_per_week=per_week,
                quiet_days_after_answer=quiet_days,
                create=create,
                now=utc_now(),
            )
    except NotFound as exc:
        typer.echo(f"error: {exc} (--create makes one)", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    typer.echo(
        f"tenant {after.user_id}{' (created)' if created else ''}: "
        f"max_concurrency {_cap(after.max_concurrency)}, max_cps {_cap(after.max_cps)}, "
        f"frequency caps {_caps(after.caps(default_caps(_settings())))}"
    )


@tenant_app.command("show")
def tenant_show(
    user_id: str = typer.Option(..., "--user-id", help="The tenant's X-User-ID."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print a tenant's limits, its API keys and its campaigns by status."""
    from dialer.calls.config import default_caps
    from dialer.db.engine import make_engine, session_factory
    from dialer.errors import NotFound
    from dialer.services.tenant_limits import describe

    engine = make_engine(_settings().database_url)
    try:
        with session_factory(engine)() as session:
            report = describe(session, user_id, default_caps(_settings()))
    except NotFound as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    campaigns = ", ".join(f"{status} {n}" for status, n in report.campaigns.items()) or "none"
    typer.echo(
        "\n".join(
            [
                f"tenant           {report.limits.user_id} ({report.limits.tenant_id})",
                f"created          {report.created_at.isoformat()}",
                f"max_concurrency  {_cap(report.limits.max_concurrency)}",
                f"max_cps          {_cap(report.limits.max_cps)}",
                f"frequency caps   {_caps(report.caps)}",
                f"api keys         {report.active_keys} active, {report.revoked_keys} revoked",
                f"campaigns        {campaigns}",
            ]
        )
    )


def _cap(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


def _caps(caps: FrequencyCaps) -> str:
    quiet = caps.quiet_days_after_answer
    return (
        f"{_cap(caps.attempts_per_day)} a day, {_cap(caps.attempts_per_week)} a week, "
        f"quiet after an answer {f'{quiet} days' if quiet else 'off'}"
    )


def _register_campaigns() -> None:
    from dialer.operator.campaigns import campaign_app

    app.add_typer(campaign_app, name="campaign")


_register_campaigns()


def _register_carrier() -> None:
    from dialer.carrier.cli import carrier_command

    app.command("carrier", help="Run a Twilio-compatible carrier simulator (HTTP).")(
        carrier_command
    )


_register_carrier()
