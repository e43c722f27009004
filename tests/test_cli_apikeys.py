"""``dialer apikey list`` and ``dialer apikey revoke``: what they print and how they exit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from dialer.cli import app
from dialer.db.engine import session_factory
from dialer.db.models import ApiKey
from dialer.services.tenancy import IssuedKey, issue_key


@pytest.fixture
def dialer(engine: Engine) -> CliRunner:
    return CliRunner(env={"DIALER_DATABASE_URL": engine.url.render_as_string(False)})


def _issue(engine: Engine, user_id: str) -> IssuedKey:
    with session_factory(engine)() as session, session.begin():
        return issue_key(session, user_id, now=datetime.now(UTC))


def test_list_shows_prefixes_and_dates_never_keys(dialer: CliRunner, engine: Engine) -> None:
    first, second = _issue(engine, "acme"), _issue(engine, "acme")
    _issue(engine, "other")
    result = dialer.invoke(app, ["apikey", "list", "--user-id", "acme"])
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split("\t") == ["prefix", "created", "revoked"]
    assert sorted(row.split("\t")[0] for row in rows) == sorted([first.key[:10], second.key[:10]])
    assert all(row.split("\t")[2] == "-" for row in rows)
    with session_factory(engine)() as session:
        hashes = [key.key_hash for key in session.query(ApiKey)]
    for secret in [first.key, second.key, *hashes]:
        assert secret not in result.output


def test_list_of_an_unknown_user_fails(dialer: CliRunner) -> None:
    result = dialer.invoke(app, ["apikey", "list", "--user-id", "nobody"])
    assert result.exit_code == 1
    assert "no tenant has user id 'nobody'" in result.stderr


def test_revoke_by_prefix_marks_the_key_revoked(dialer: CliRunner, engine: Engine) -> None:
    issued = _issue(engine, "acme")
    kept = _issue(engine, "acme")
    result = dialer.invoke(app, ["apikey", "revoke", issued.key[:10]])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"revoked {issued.key[:10]} of acme at ")
    listed = dialer.invoke(app, ["apikey", "list", "--user-id", "acme"]).stdout.splitlines()
    revoked = {row.split("\t")[0]: row.split("\t")[2] for row in listed[1:]}
    assert revoked[kept.key[:10]] == "-"
    assert revoked[issued.key[:10]] != "-"
    again = dialer.invoke(app, ["apikey", "revoke", issued.key])  # the whole key names it too
    assert again.exit_code == 0, again.output


def test_an_unknown_or_ambiguous_prefix_fails_and_revokes_nothing(
    dialer: CliRunner, engine: Engine
) -> None:
    first, second = _issue(engine, "acme"), _issue(engine, "other")
    unknown = dialer.invoke(app, ["apikey", "revoke", "dk_nothing"])
    assert unknown.exit_code == 1
    assert "no API key starts with 'dk_nothing'" in unknown.stderr
    ambiguous = dialer.invoke(app, ["apikey", "revoke", "dk_"])
    assert ambiguous.exit_code == 1
    assert "ambiguous" in ambiguous.stderr
    assert first.key[:10] in ambiguous.stderr
    assert second.key[:10] in ambiguous.stderr
    with session_factory(engine)() as session:
        assert all(key.revoked_at is None for key in session.query(ApiKey))
