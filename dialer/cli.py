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
