"""What a scrape gets: this process's metrics (or, in multiprocess mode, those of every process
writing to the same directory) plus the gauges read at scrape time; and the HTTP exporter of
the processes that serve no API (workers, schedulers).

Multiprocess mode is prometheus-client's: with ``PROMETHEUS_MULTIPROC_DIR`` set in the
environment before the process starts, every process writes its values to files there, and a
scrape adds them up. Use it where one exporter must speak for several processes: ``dialer
api --workers N`` (uvicorn's processes) and a worker with ``--pool prefork``. The directory
must be emptied before the processes that share it start (their files would otherwise add
to the new ones), and a prefork worker marks each child that exits dead
(:func:`process_exited`), so that its live gauges leave the sum.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from threading import Thread
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest, multiprocess
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from dialer.observability import metrics

log = logging.getLogger(__name__)

#: prometheus-client's own variable (it reads it as it is imported, and so must we).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST


def multiprocess_dir() -> str | None:
    """The multiprocess directory, when this process runs in multiprocess mode."""
    return os.environ.get(MULTIPROC_ENV) or None


class Scrape(Collector):
    """Everything one scrape of this process reports: its families (the whole directory's in
    multiprocess mode), then ``extra`` collectors read now."""

    def __init__(self, extra: Iterable[Collector] = ()) -> None:
        path = multiprocess_dir()
        self._base: Any = REGISTRY
        if path is not None:
            self._base = multiprocess.MultiProcessCollector(None, path)  # type: ignore[no-untyped-call]
        self._extra = tuple(extra)

    def collect(self) -> Iterator[Metric]:
        yield from self._base.collect()
        for collector in self._extra:
            yield from collector.collect()

    def text(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self)

    def close(self) -> None:
        """Close what the extra collectors hold open (a broker connection)."""
        for collector in self._extra:
            close = getattr(collector, "close", None)
            if close is not None:
                close()


@dataclass
class Exporter:
    """A running HTTP exporter (``GET /metrics``, and any other path)."""

    host: str
    port: int
    _server: Any
    _thread: Thread

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_exporter(
    host: str, port: int | None, role: str, extra: Iterable[Collector] = ()
) -> Exporter | None:
    """Report this process's ``role``, and serve its metrics on ``host``:``port`` (0: a free
    port, logged) from a thread; None (no exporter) when ``port`` is None."""
    from prometheus_client import start_http_server

    metrics.set_role(role)
    if port is None:
        return None
    server, thread = start_http_server(port, host, registry=Scrape(extra))
    bound = int(server.server_port)
    log.info(
        "metrics exporter of this %s listening on http://%s:%d/metrics%s",
        role,
        host,
        bound,
        " (multiprocess mode)" if multiprocess_dir() else "",
    )
    return Exporter(host, bound, server, thread)


def process_exited(pid: int) -> None:
    """A process of this host's multiprocess directory exited: its live gauges go."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
