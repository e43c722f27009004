"""Celery configuration from the settings (a function, not a global)."""

from __future__ import annotations

from typing import Any

from dialer.errors import ConfigurationError
from dialer.settings import Settings

DIAL_QUEUE = "dial"
EVENTS_QUEUE = "events"
#: Longest countdown any task uses, in seconds (provider backoff, CPS pacing, slot waits).
MAX_COUNTDOWN_S = 60
#: Unacked messages are redelivered after this long; far above any countdown (kombu #337).
VISIBILITY_TIMEOUT_S = 2 * 3600
#: On SIGTERM, running tasks get this long to finish before the worker goes down.
SOFT_SHUTDOWN_TIMEOUT_S = 30.0
#: The GIL switch interval of a worker whose tasks run in threads, in seconds (Python's default
#: is 0.005). Its threads mostly wait on the provider, the database and Redis, and each hop of
#: a call (task received, row locked, slot taken) needs the GIL back; a shorter interval gives
#: it back sooner, so a freed slot is refilled sooner. bench/makespan.py measured 1 ms against
#: 5 ms (the default), 2 ms and 0.2 ms on a machine kept busy: 1 ms was the best.
THREAD_SWITCH_INTERVAL_S = 0.001


def celery_config(settings: Settings) -> dict[str, Any]:
    if settings.redis_url is None:
        raise ConfigurationError("DIALER_REDIS_URL must be set to run Celery workers")
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_S},
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_soft_shutdown_timeout": SOFT_SHUTDOWN_TIMEOUT_S,
        "worker_enable_soft_shutdown_on_idle": True,
        "task_default_queue": EVENTS_QUEUE,
        "task_routes": {
            "dialer.dial": {"queue": DIAL_QUEUE},
            "dialer.dispatch_campaign": {"queue": EVENTS_QUEUE},
        },
        "worker_hijack_root_logger": False,
        "timezone": "UTC",
        "enable_utc": True,
    }
