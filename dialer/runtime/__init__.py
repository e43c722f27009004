"""Wiring of one process: :class:`Runtime`, and the builder of each role.

Entry points (the API, the Celery worker, the scheduler, the demo) build one with the builder
of their role and pass it down.
"""

from dialer.runtime.core import Refills, Runtime, build_runtime
from dialer.runtime.roles import api_runtime, embedded_runtime, scheduler_runtime, worker_runtime

__all__ = [
    "Refills",
    "Runtime",
    "api_runtime",
    "build_runtime",
    "embedded_runtime",
    "scheduler_runtime",
    "worker_runtime",
]
