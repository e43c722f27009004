"""The broker settings the at-most-once dial depends on (no broker needed)."""

from __future__ import annotations

from dialer.calls.config import CallConfig
from dialer.queue.celery import MAX_COUNTDOWN_S, VISIBILITY_TIMEOUT_S, CeleryQueue, celery_config
from dialer.settings import Settings


class _Sent:
    def __init__(self) -> None:
        self.countdowns: list[float | None] = []

    def send_task(self, name: str, *, args: list[int], queue: str, countdown: float | None) -> None:
        self.countdowns.append(countdown)


def test_no_task_waits_longer_than_the_visibility_timeout() -> None:
    """A task held past the visibility timeout is handed to a second worker while the first
    still holds it (kombu's Redis transport): every countdown stays far below it."""
    sent = _Sent()
    queue = CeleryQueue(sent, redis_client=None)  # type: ignore[arg-type]
    queue.dial([1], 10 * VISIBILITY_TIMEOUT_S)
    queue.dial([2], 5.0)
    queue.dial([3])
    assert sent.countdowns == [MAX_COUNTDOWN_S, 5.0, None]
    assert MAX_COUNTDOWN_S * 10 <= VISIBILITY_TIMEOUT_S
    config = CallConfig(account="a")
    for wait_s in (config.slot_retry_s, config.provider_backoff_s, config.pace_wait_here_s):
        assert wait_s <= MAX_COUNTDOWN_S


def test_workers_reconnect_to_the_broker_however_long_it_is_gone() -> None:
    config = celery_config(Settings(redis_url="redis://127.0.0.1:6379/0"))
    assert config["broker_connection_retry"] is True
    assert config["broker_connection_max_retries"] is None
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["broker_transport_options"]["visibility_timeout"] == VISIBILITY_TIMEOUT_S
    # Every broker connection has timeouts: a stalled Redis fails a send, never hangs it.
    assert config["broker_transport_options"]["socket_timeout"] > 0
    assert config["broker_transport_options"]["socket_connect_timeout"] > 0
