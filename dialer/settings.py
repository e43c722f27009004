"""The one settings object, read once from ``DIALER_*`` environment variables.

Entry points call :func:`load_settings` at start-up and pass the result down; nothing deeper
in the code reads the environment. Invalid values fail at start-up with a
:class:`~dialer.errors.ConfigurationError` that names the variable.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import pydantic
from pydantic import AnyHttpUrl, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialer.errors import ConfigurationError

ENV_PREFIX = "DIALER_"
DEFAULT_DATABASE_URL = "sqlite:///dialer.db"
TWILIO_API_URL = "https://api.twilio.com"
#: URL schemes Celery's broker may have: Redis, or RabbitMQ (AMQP 0-9-1).
BROKER_SCHEMES = ("redis://", "rediss://", "amqp://", "amqps://")


class ProviderName(StrEnum):
    SIMULATOR = "simulator"
    TWILIO = "twilio"


class Settings(BaseSettings):
    """Everything the dialer can be configured with. Field ``x`` is variable ``DIALER_X``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, case_sensitive=False, frozen=True, extra="ignore"
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL; a SQLite file in the working directory by default.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL for the broker, semaphore and counters; unset = embedded mode.",
    )
    redis_connect_timeout_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Seconds to wait for a connection to Redis (every client: API, workers, "
        "scheduler, the Celery broker).",
    )
    redis_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="Seconds to wait for Redis to answer a command; a Redis that accepts "
        "connections and never answers fails requests after this long instead of hanging them.",
    )
    # -- Celery's broker: Redis (the default) or RabbitMQ. Redis keeps the semaphore, the
    # pacer and the dispatch flags whatever the broker (see dialer.queue.broker).
    broker_url: str | None = Field(
        default=None,
        description="Celery's broker: redis://, rediss://, amqp:// or amqps:// (RabbitMQ: "
        "quorum queues, publisher confirms); unset = DIALER_REDIS_URL. Needs DIALER_REDIS_URL "
        "all the same: the semaphore and the pacer live in Redis.",
    )
    broker_heartbeat_s: int = Field(
        default=30,
        ge=0,
        le=600,
        description="AMQP heartbeat interval in seconds (0 = none): a worker whose broker "
        "went silent (a dead node, a cut network) notices within about two intervals and "
        "reconnects. Unused on Redis.",
    )
    broker_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds an AMQP broker may take to answer a read, a write or a publish's "
        "confirm: a RabbitMQ that blocks publishers (a memory or disk alarm) fails the send "
        "after this long instead of hanging it. Unused on Redis (DIALER_REDIS_TIMEOUT_S).",
    )
    provider: ProviderName = Field(default=ProviderName.SIMULATOR)
    twilio_account_sid: str | None = None
    twilio_auth_token: pydantic.SecretStr | None = None
    twilio_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl(TWILIO_API_URL),
        description="Twilio's REST API, or any Twilio-compatible endpoint.",
    )
    public_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8000"),
        description="Where the provider reaches our webhooks; signatures are checked against it.",
    )
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    log_format: Literal["json", "text"] | None = Field(
        default=None,
        description="Log lines as JSON objects (one per line) or text; unset = text when "
        "stderr is a terminal, JSON otherwise.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of the Prometheus exporter of a worker or scheduler (0 = any free "
        "port, logged); unset = none. The API serves /metrics on its own port.",
    )
    metrics_host: str = Field(
        default="0.0.0.0", description="Interface the exporter of DIALER_METRICS_PORT listens on."
    )
    scheduler_interval_s: float = Field(
        default=0.5, gt=0, le=60, description="Seconds between scheduler ticks."
    )
    reconcile_interval_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Seconds between semaphore/counter reconciles with the database; bounds "
        "how long a Redis restart can admit extra calls.",
    )
    lost_task_timeout_s: float = Field(
        # Below the 120 s queue lease of a claimed attempt's slots, so a lost task is re-sent
        # while its slots are still held, not after another call could have taken them.
        default=60.0,
        ge=5,
        le=3600,
        description="A queued attempt no worker started after this long has its dial task "
        "re-sent (a task lost with a dead worker); re-sending is harmless.",
    )
    reap_unplaced_after_s: float = Field(
        default=120.0,
        ge=15,
        le=3600,
        description="An attempt in dialing without a provider call id after this long is "
        "looked up at the provider (a worker died mid-dial); keep it above the provider's "
        "HTTP timeout.",
    )
    cap_attempts_per_day: int = Field(
        default=3,
        ge=1,
        le=10_000,
        description="Call attempts to one number in any rolling 24 hours, across a tenant's "
        "campaigns, for a tenant without its own cap (a campaign may be stricter).",
    )
    cap_attempts_per_week: int = Field(
        default=7,
        ge=1,
        le=10_000,
        description="Call attempts to one number in any rolling 7 days, across a tenant's "
        "campaigns, for a tenant without its own cap.",
    )
    cap_quiet_days_after_answer: int = Field(
        default=0,
        ge=0,
        le=3650,
        description="Days without a new call to a number after a person answered it, for a "
        "tenant without its own; 0 = off.",
    )
    provider_sweep_s: float = Field(
        default=30.0,
        ge=1,
        le=3600,
        description="Seconds between sweeps that ask the provider about calls we have heard "
        "nothing of (its live-call list, then the calls missing from it): a lost terminal "
        "callback frees its slot within this plus one sweep.",
    )
    ring_timeout_s: int = Field(default=30, ge=15, le=600, description="Ring time per call.")
    call_time_limit_s: int = Field(
        default=3600, ge=10, le=14400, description="Longest call once answered, in seconds."
    )
    calls_per_second: float = Field(
        default=1.0, gt=0, le=10_000, description="Call starts per second per provider account."
    )
    pace_at_claim: bool = Field(
        default=True,
        description="Reserve each claimed call's start when it is claimed (claim only what the "
        "pace lets start within a second); false: every call takes its pace at the dial.",
    )
    machine_detection: str = Field(
        default="DetectMessageEnd", pattern=r"^(Enable|DetectMessageEnd)$"
    )
    assistant_stream_url: str | None = Field(
        default=None,
        pattern=r"^wss?://",
        description="Media stream (wss://) answered calls connect to; unset = say the opening "
        "message only.",
    )
    opt_out_digit: str = Field(
        default="9",
        pattern=r"^[0-9*#]?$",
        description="The key a person presses while the opening message plays to be called "
        "no more (the number goes on the tenant's do-not-call list); empty = no key.",
    )
    amd_unknown_as: str = Field(
        default="human",
        pattern=r"^(human|voicemail)$",
        description="How a call whose machine detection said 'unknown' is counted.",
    )
    # -- call health: abandoned calls, caller numbers, failing campaigns ------------------
    abandon_connect_s: float = Field(
        default=2.0,
        gt=0,
        le=30,
        description="A call answered by a person whose assistant stream has not started this "
        "many seconds after the answer counts as abandoned (the US rules say 2).",
    )
    abandon_min_human_calls: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="Calls answered by a person a campaign needs in its 30-day window before "
        "its abandon rate can pause it (one abandoned call in five is not a 20% campaign).",
    )
    number_health_window_h: int = Field(
        default=24, ge=1, le=24 * 30, description="Hours of dials a caller number is judged on."
    )
    number_reject_share: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="Share of a number's dials refused by carriers (SIP 603/607/608, Twilio "
        "32017/32018) that quarantines it...",
    )
    number_reject_min_dials: int = Field(
        default=20, ge=1, le=100_000, description="...once it has this many dials."
    )
    number_min_answer_rate: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="A number whose dials are answered less often than this is quarantined...",
    )
    number_answer_min_dials: int = Field(
        default=50, ge=1, le=100_000, description="...once it has this many dials."
    )
    failure_pause_dials: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="A campaign's latest dials looked at for its carrier failure rate.",
    )
    failure_pause_share: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Share of those dials failed at the carrier that pauses the campaign.",
    )
    simulator_seed: int | None = Field(default=None, description="Seed of the simulator.")
    simulator_profile: str | None = Field(
        default=None,
        description="Simulated callees, e.g. 'weights=human=3,busy=1;ring=uniform:2,8;"
        "talk=exp:40' (fields: weights, setup, ring, talk, amd, greeting, message, reject).",
    )
    simulator_time_scale: float = Field(
        default=1.0, gt=0, le=10, description="Wall seconds per simulated second."
    )
    simulator_lose_ended_p: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of simulated calls whose end is never reported (a lost terminal "
        "callback), to try the provider sweep.",
    )
    calling_rules_file: Path | None = Field(
        default=None,
        description="A TOML file of calling hours by place (the format of the shipped "
        "dialer/policy/rules/calling_rules.toml) used instead of the shipped rules.",
    )
    simulator_numbers: str | None = Field(
        default=None,
        description="Comma-separated numbers the simulator's account owns: the only ones it "
        "calls from, and the only ones a tenant may register; unset = it owns any valid number.",
    )

    @field_validator("simulator_numbers")
    @classmethod
    def _simulator_numbers(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        from dialer.errors import ValidationError
        from dialer.phone import to_e164

        numbers = []
        for raw in value.split(","):
            try:
                numbers.append(to_e164(raw))
            except ValidationError as exc:
                raise ValueError(f"{raw.strip()!r}: {exc.reason}") from None
        return ",".join(numbers)

    @field_validator("calling_rules_file", mode="before")
    @classmethod
    def _calling_rules(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        from dialer.policy.calling_rules import CallingRulesError, load_rules

        try:
            load_rules(Path(value))
        except CallingRulesError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("log_format", "metrics_port", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {exc}") from None
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ValueError("only sqlite and postgresql databases are supported")
        return value

    @field_validator("simulator_profile")
    @classmethod
    def _profile(cls, value: str | None) -> str | None:
        if value:
            from dialer.errors import ValidationError
            from dialer.telephony.simulator.plan import parse_profile

            try:
                parse_profile(value)
            except ValidationError as exc:
                raise ValueError(exc.reason) from None
        return value or None

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="before")
    @classmethod
    def _broker_defaults_to_redis(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("broker_url") and data.get("redis_url"):
            return {**data, "broker_url": data["redis_url"]}
        return data

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, value: str | None) -> str | None:
        if not value:
            return None
        if value.startswith("unix://"):
            raise ValueError(
                "Celery cannot use a unix:// Redis socket as its broker: set "
                f"{ENV_PREFIX}BROKER_URL to a redis://, rediss://, amqp:// or amqps:// URL"
            )
        if not value.startswith(BROKER_SCHEMES):
            raise ValueError("must start with " + ", ".join(BROKER_SCHEMES))
        return value

    @model_validator(mode="after")
    def _broker_beside_redis(self) -> Settings:
        if self.broker_url is not None and self.redis_url is None:
            raise ValueError(
                f"{ENV_PREFIX}BROKER_URL needs {ENV_PREFIX}REDIS_URL: the concurrency "
                "semaphore, the pacer and the dispatch flags live in Redis whatever the broker"
            )
        return self

    @model_validator(mode="after")
    def _losses_only_where_swept(self) -> Settings:
        # A distributed fleet's simulator lives in each worker: the scheduler's sweep cannot
        # see its calls, and a lost end would hold its slot for a whole call lease.
        if self.simulator_lose_ended_p and self.redis_url is not None:
            raise ValueError(
                f"{ENV_PREFIX}SIMULATOR_LOSE_ENDED_P works in embedded mode only (no "
                f"{ENV_PREFIX}REDIS_URL); with a fleet, lose callbacks at the carrier: "
                "dialer carrier --drop-ended-p"
            )
        return self

    @model_validator(mode="after")
    def _twilio_credentials(self) -> Settings:
        if self.provider is ProviderName.TWILIO:
            missing = [
                f"{ENV_PREFIX}{name.upper()}"
                for name in ("twilio_account_sid", "twilio_auth_token")
                if not getattr(self, name)
            ]
            if missing:
                raise ValueError(f"{', '.join(missing)} must be set when DIALER_PROVIDER=twilio")
        return self

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured (embedded mode): one scheduler process dials, with
        the in-memory semaphore and in-process tasks; the API only records callbacks.

        The one place the deployment mode is decided; everything else asks this.
        """
        return self.redis_url is None

    def redacted(self) -> dict[str, Any]:
        """Every setting as JSON values, fit to print or log: tokens masked, and the password
        of every URL (the database's, Redis's) hidden."""
        values = self.model_dump(mode="json")
        return {
            name: hide_password(value) if isinstance(value, str) else value
            for name, value in values.items()
        }


def hide_password(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``; anything else unchanged."""
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    if ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment (``overrides`` win), or raise naming the variable."""
    try:
        return Settings(**overrides)
    except pydantic.ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            loc = [str(part) for part in error["loc"]]
            problems.append(f"{ENV_PREFIX}{loc[0].upper()}: {message}" if loc else message)
        raise ConfigurationError("invalid settings: " + "; ".join(problems)) from None
