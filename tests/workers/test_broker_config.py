"""The broker settings the at-most-once dial depends on (no broker needed)."""

from __future__ import annotations

from dialer.calls.config import CallConfig
from dialer.queue.celery import MAX_COUNTDOWN_S, VISIBILITY_TIMEOUT_S, CeleryQueue, celery_config
from dialer.settings import Settings
from workers.celery_app import DialerWorker, run_worker


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


class _Ends:
    """A Celery app stand-in whose worker ends at once, as it was told to."""

    def __init__(self, exit_code: int | None, asked: bool, owner: object) -> None:
        self.exit_code, self.asked, self.owner = exit_code, asked, owner

    def worker_main(self, argv: list[str]) -> None:
        if self.asked:
            self.owner.stop_requested.set()  # type: ignore[attr-defined]
        if self.exit_code is not None:
            raise SystemExit(self.exit_code)


def test_a_worker_that_stops_unasked_is_a_crash_to_start_again() -> None:
    """Celery reports kombu's failure on a Redis restart as a clean exit: only a stop that was
    asked for (a signal) counts as one."""
    worker = DialerWorker(Settings(redis_url="redis://127.0.0.1:6379/0"))
    for exit_code, asked, clean in [(None, True, True), (0, True, True), (0, False, False),
                                    (None, False, False), (1, True, False)]:  # fmt: skip
        worker.stop_requested.clear()
        worker.celery = _Ends(exit_code, asked, worker)  # type: ignore[assignment]
        assert run_worker(worker, ["worker"]) is clean, (exit_code, asked)
