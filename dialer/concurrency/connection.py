"""The one way to open a Redis client: every client of the dialer has the same timeouts.

The API (readiness, dispatch flags), the workers, the scheduler and the stores all connect
through :func:`open_redis`, so a Redis that accepts connections and never answers fails a
request after ``DIALER_REDIS_TIMEOUT_S`` instead of hanging it. A Redis broker takes the
same timeouts through its transport options (:mod:`dialer.queue.broker`); RabbitMQ has its
own (``DIALER_BROKER_TIMEOUT_S``).
"""

from __future__ import annotations

import redis

from dialer.errors import ConfigurationError
from dialer.settings import Settings


def open_redis(settings: Settings) -> redis.Redis:
    """A client of ``settings.redis_url`` with its connect and command timeouts.

    Connections are opened lazily, on the first command. Embedded mode has no Redis:
    :class:`~dialer.errors.ConfigurationError`.
    """
    if settings.redis_url is None:
        raise ConfigurationError("DIALER_REDIS_URL is not set (embedded mode has no Redis)")
    return redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.redis_connect_timeout_s,
        socket_timeout=settings.redis_timeout_s,
    )
