from __future__ import annotations

from pathlib import Path

import pytest

from dialer.errors import ConfigurationError
from dialer.policy import calling_rules
from dialer.settings import DEFAULT_DATABASE_URL, ProviderName, load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("DIALER_"):
            monkeypatch.delenv(name)


def test_defaults_are_the_embedded_mode() -> None:
    settings = load_settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.redis_url is None
    assert settings.embedded
    assert settings.provider is ProviderName.SIMULATOR
    assert str(settings.twilio_base_url) == "https://api.twilio.com/"


def test_reads_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALER_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("DIALER_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("DIALER_PROVIDER", "twilio")
    monkeypatch.setenv("DIALER_TWILIO_ACCOUNT_SID", "AC123")
    monkeypatch.setenv("DIALER_TWILIO_AUTH_TOKEN", "secret")
    monkeypatch.setenv("DIALER_TWILIO_BASE_URL", "http://127.0.0.1:9999")
    settings = load_settings()
    assert not settings.embedded
    assert settings.provider is ProviderName.TWILIO
    assert settings.twilio_auth_token is not None
    assert settings.twilio_auth_token.get_secret_value() == "secret"
    assert "secret" not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DIALER_PROVIDER", "carrier-pigeon"),
        ("DIALER_DATABASE_URL", "mysql://localhost/db"),
        ("DIALER_DATABASE_URL", "not a url"),
        ("DIALER_REDIS_URL", "http://127.0.0.1:6379"),
        ("DIALER_PUBLIC_BASE_URL", "nowhere"),
        ("DIALER_LOG_LEVEL", "LOUD"),
        ("DIALER_SIMULATOR_NUMBERS", "+14155550100,555"),
    ],
)
def test_bad_settings_fail_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        load_settings()


def test_twilio_needs_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALER_PROVIDER", "twilio")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "DIALER_TWILIO_ACCOUNT_SID" in str(caught.value)
    assert "DIALER_TWILIO_AUTH_TOKEN" in str(caught.value)


def test_hide_password_hides_only_the_password() -> None:
    from dialer.settings import hide_password

    assert (
        hide_password("postgresql+psycopg://u:p@h:5432/d") == "postgresql+psycopg://u:***@h:5432/d"
    )
    assert hide_password("redis://:p@h:6379/0") == "redis://:***@h:6379/0"
    assert hide_password("redis://h:6379/0") == "redis://h:6379/0"
    assert hide_password("postgresql://u@h/d") == "postgresql://u@h/d"  # no password
    assert hide_password("sqlite:///dialer.db") == "sqlite:///dialer.db"
    assert hide_password("not a url") == "not a url"


def test_lost_simulated_ends_are_refused_where_no_sweep_sees_them() -> None:
    import pytest

    from dialer.errors import ConfigurationError
    from dialer.settings import load_settings

    assert load_settings(simulator_lose_ended_p=0.1).simulator_lose_ended_p == 0.1
    with pytest.raises(ConfigurationError, match="DIALER_SIMULATOR_LOSE_ENDED_P"):
        load_settings(simulator_lose_ended_p=0.1, redis_url="redis://127.0.0.1:6379/0")


def test_the_simulators_numbers_are_read_as_e164(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALER_SIMULATOR_NUMBERS", "(415) 555-0100, +1 212 555 0100")
    assert load_settings().simulator_numbers == "+14155550100,+12125550100"
    assert load_settings(simulator_numbers="").simulator_numbers is None


def test_the_broker_is_redis_unless_another_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALER_REDIS_URL", "redis://127.0.0.1:6379/0")
    assert load_settings().broker_url == "redis://127.0.0.1:6379/0"
    monkeypatch.setenv("DIALER_BROKER_URL", "amqps://dialer:s3cret@rabbit.internal:5671/dialer")
    settings = load_settings()
    assert settings.broker_url == "amqps://dialer:s3cret@rabbit.internal:5671/dialer"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"  # the semaphore's, still
    # `dialer settings` prints it with its password masked.
    assert settings.redacted()["broker_url"] == "amqps://dialer:***@rabbit.internal:5671/dialer"
    assert load_settings().redacted()["broker_heartbeat_s"] == 30


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (
            {"DIALER_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//"},
            "DIALER_BROKER_URL needs DIALER_REDIS_URL",
        ),
        (
            {"DIALER_REDIS_URL": "redis://h:6379/0", "DIALER_BROKER_URL": "kafka://h:9092"},
            "DIALER_BROKER_URL: must start with redis://, rediss://, amqp://, amqps://",
        ),
        (
            {"DIALER_REDIS_URL": "unix:///run/redis.sock"},
            "DIALER_BROKER_URL: Celery cannot use a unix:// Redis socket",
        ),
        (
            {"DIALER_REDIS_URL": "redis://h:6379/0", "DIALER_BROKER_HEARTBEAT_S": "-1"},
            "DIALER_BROKER_HEARTBEAT_S",
        ),
    ],
)
def test_a_broker_that_cannot_work_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], message: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=message):
        load_settings()


def test_a_unix_socket_redis_works_beside_a_broker_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIALER_REDIS_URL", "unix:///run/redis.sock")
    monkeypatch.setenv("DIALER_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    assert load_settings().broker_url == "amqp://guest:guest@127.0.0.1:5672//"


def test_a_calling_rules_file_is_checked_at_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('version = "x"\n[default]\nhours = [{ start = "9am", end = "21:00" }]\n')
    monkeypatch.setenv("DIALER_CALLING_RULES_FILE", str(rules))
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "DIALER_CALLING_RULES_FILE" in str(caught.value)
    assert "default.hours.0.start" in str(caught.value)
    monkeypatch.setenv("DIALER_CALLING_RULES_FILE", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigurationError, match="cannot be read"):
        load_settings()
    rules.write_text('version = "x"\n[default]\nhours = [{ start = "09:00", end = "21:00" }]\n')
    monkeypatch.setenv("DIALER_CALLING_RULES_FILE", str(rules))
    assert load_settings().calling_rules_file == rules


def test_the_rules_named_by_the_settings_are_the_ones_screened_with(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        'version = "ours-1"\n[default]\nhours = [{ start = "09:00", end = "17:00" }]\n'
    )
    try:
        calling_rules.configure(load_settings(calling_rules_file=rules).calling_rules_file)
        assert calling_rules.active_rules().version == "ours-1"
    finally:
        calling_rules.use_rules(None)
    assert calling_rules.active_rules().version == calling_rules.load_rules().version
