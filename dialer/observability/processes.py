"""What each role of process serves to Prometheus.

- The API: ``GET /metrics`` on its own port: its families, the per-campaign gauges, and the
  depth of the Celery queues (read from the broker at scrape time).
- A worker or a scheduler: its families on ``DIALER_METRICS_PORT`` (none when unset). The
  embedded scheduler, the one process holding the semaphore, also serves the per-campaign
  gauges with the slots in use (an embedded API cannot see them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from dialer.concurrency.stores import open_stores
from dialer.observability import metrics
from dialer.observability.campaigns import CampaignGauges
from dialer.observability.exposition import Exporter, Scrape, start_exporter
from dialer.observability.queues import QueueDepth, QueueDepthGauge
from dialer.settings import Settings

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

    from dialer.runtime import Runtime


def api_scrape(settings: Settings, sessions: sessionmaker[Session], redis: Any | None) -> Scrape:
    """What ``GET /metrics`` of the API answers (``redis``: the API's client, distributed)."""
    metrics.set_role("api")
    slots = None if settings.embedded else open_stores(settings, redis).slots
    extra: list[Collector] = [CampaignGauges(sessions, slots)]
    broker = settings.broker_url  # Redis's unless a broker of its own is set; None embedded
    if broker is not None:
        extra.append(QueueDepthGauge(QueueDepth(broker, timeout_s=settings.redis_timeout_s)))
    return Scrape(extra)


def worker_exporter(settings: Settings) -> Exporter | None:
    return start_exporter(settings.metrics_host, settings.metrics_port, "worker")


def scheduler_exporter(settings: Settings, runtime: Runtime) -> Exporter | None:
    extra = [CampaignGauges(runtime.sessions, runtime.stores.slots)] if settings.embedded else []
    return start_exporter(settings.metrics_host, settings.metrics_port, "scheduler", extra)
