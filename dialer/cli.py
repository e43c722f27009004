"""The ``dialer`` command: thin wrappers that parse arguments and call library functions."""

from __future__ import annotations

import json

import typer

from dialer.clock import utc_now
from dialer.errors import ConfigurationError
from dialer.settings import Settings, load_settings

app = typer.Typer(help="Self-hosted outbound dialing for voice campaigns.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
apikey_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command("settings")
def show_settings() -> None:
    """Validate the DIALER_* settings and print them (secrets masked)."""
    typer.echo(json.dumps(_settings().model_dump(mode="json"), indent=2))


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
def demo() -> None:
    """Store a demo campaign in the embedded database and print its dialing plan."""
    from dialer.demo import run_demo

    run_demo(_settings().database_url, utc_now(), typer.echo)


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
        proxy_headers=True,
    )
