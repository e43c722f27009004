"""A RabbitMQ that stops answering (a memory or disk alarm blocks publishers; a half-dead
node) fails a send after DIALER_BROKER_TIMEOUT_S and its retries; it never hangs it."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
from kombu.exceptions import OperationalError

from dialer.queue.celery import CeleryQueue, create_celery
from dialer.settings import Settings


class FreezingProxy:
    """Forwards TCP to ``target``; once frozen, passes nothing back to the client."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.frozen = threading.Event()
        self.closed = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = int(self.listener.getsockname()[1])
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
                server = socket.create_connection(self.target)
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            self.sockets += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                while answers and self.frozen.is_set() and not self.closed.is_set():
                    time.sleep(0.05)
                sink.sendall(data)

    def close(self) -> None:
        self.closed.set()
        for sock in [self.listener, *self.sockets]:
            sock.close()


@pytest.fixture
def proxy(rabbitmq_url: str) -> Iterator[FreezingProxy]:
    parts = urlsplit(rabbitmq_url)
    found = FreezingProxy((parts.hostname or "127.0.0.1", parts.port or 5672))
    try:
        yield found
    finally:
        found.close()


@pytest.mark.timeout(90)  # a hang fails here, not after the suite's two minutes
def test_a_send_to_a_broker_that_stopped_answering_fails(
    proxy: FreezingProxy, rabbitmq_url: str, redis_url: str
) -> None:
    parts = urlsplit(rabbitmq_url)
    through_proxy = parts._replace(netloc=f"{parts.netloc.rsplit(':', 1)[0]}:{proxy.port}")
    settings = Settings(
        redis_url=redis_url,
        broker_url=through_proxy.geturl(),
        broker_timeout_s=1.0,
        redis_connect_timeout_s=1.0,
    )
    celery = create_celery(settings)
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    queue = CeleryQueue(celery, client)
    try:
        queue.dial([1])  # confirmed: the broker answers
        proxy.frozen.set()
        with pytest.raises(OperationalError, match="timed out"):
            queue.dial([2])  # the confirm never comes
    finally:
        proxy.frozen.clear()
        celery.close()
        client.close()
