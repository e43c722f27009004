"""The Celery workers: the app, its two tasks, and the runtime they run on.

Task bodies are one line each: they hand ids to the worker's
:class:`~dialer.runtime.Runtime`, built once per worker process (after the fork, for a prefork
pool) by :func:`~dialer.runtime.worker_runtime`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from celery import Celery, signals

from dialer.errors import ConcurrencyError
from dialer.observability import context, exposition, logs
from dialer.observability.exposition import Exporter
from dialer.observability.processes import worker_exporter
from dialer.queue.celery import DIAL_TASK, DISPATCH_TASK, create_celery
from dialer.runtime import Runtime, worker_runtime
from dialer.settings import Settings
from dialer.telephony.simulator.channel import LANES

#: The GIL switch interval of a worker whose tasks run in threads, in seconds (Python's default
#: is 0.005). Its threads mostly wait on the provider, the database and Redis, and each hop of
#: a call (task received, row locked, slot taken) needs the GIL back; a shorter interval gives
#: it back sooner, so a freed slot is refilled sooner. bench/makespan.py measured 1 ms against
#: 5 ms (the default), 2 ms and 0.2 ms on a machine kept busy: 1 ms was the best.
THREAD_SWITCH_INTERVAL_S = 0.001


#: Errors of a store that is away for a while (Redis stalled or restarting, PostgreSQL
#: restarting): the task comes back after a backoff, instead of waiting for the outbox. A retry
#: is safe: a dial claims its attempt with a compare-and-set before the provider hears of it.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    ConcurrencyError,
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
)
_RETRIED: dict[str, Any] = {
    "acks_late": True,
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 1,  # 1, 2, 4... seconds
    "retry_backoff_max": 30,  # below MAX_COUNTDOWN_S, far below the visibility timeout
    "retry_jitter": True,
    "max_retries": 20,  # about 8 minutes; then the outbox re-sends what is still queued
}


@dataclass
class DialerWorker:
    """A Celery app with the dialer's tasks, and the runtime of this worker process."""

    settings: Settings
    celery: Celery = field(init=False)
    _runtime: Runtime | None = field(default=None, init=False, repr=False)
    #: Set when the worker was asked to stop (a signal, Ctrl-C): any other end is a crash.
    stop_requested: threading.Event = field(default_factory=threading.Event, init=False)
    _building: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    #: The metrics exporter of this worker (``DIALER_METRICS_PORT``), once it runs.
    exporter: Exporter | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.celery = create_celery(self.settings)
        self._register_tasks()
        self._connect_signals()

    def runtime(self) -> Runtime:
        """This process's runtime; a pool of threads shares one, built on first use."""
        if self._runtime is None:
            with self._building:
                if self._runtime is None:
                    self._runtime = worker_runtime(self.settings, self.celery)
        return self._runtime

    def close(self) -> None:
        with self._building:
            if self._runtime is not None:
                self._runtime.close()
                self._runtime = None

    def close_exporter(self) -> None:
        if self.exporter is not None:
            self.exporter.close()
            self.exporter = None

    def _register_tasks(self) -> None:
        # Not shared: a shared task is added to every app created later in the process, so a
        # second app (tests make several) would run the first one's task, with its runtime.
        @self.celery.task(name=DIAL_TASK, shared=False, **_RETRIED)
        def dial(attempt_id: int) -> str:
            """Place the call of one queued attempt, at most once (see dialer.calls.placing)."""
            return str(self.runtime().run_dial(int(attempt_id)).result)

        @self.celery.task(name=DISPATCH_TASK, shared=False, **_RETRIED)
        def dispatch_campaign(campaign_id: str) -> int:
            """Slots of the campaign freed: dispatch into them now; the first call claimed is
            dialed right here (see dialer.calls.refill)."""
            return self.runtime().run_dispatch(str(campaign_id))

    def _connect_signals(self) -> None:
        bound: dict[str, Any] = {}  # task id -> its context token, while it runs

        @signals.task_prerun.connect(weak=False)
        def _bind_ids(task_id: str = "", task: Any = None, args: Any = (), **_: Any) -> None:
            """The task's ids on every line logged while it runs, Celery's own included
            (its success or failure line is logged before ``task_postrun``)."""
            if getattr(task, "app", None) is self.celery:
                bound[task_id] = context.push(**_task_ids(task.name, args))

        @signals.task_postrun.connect(weak=False)
        def _unbind_ids(task_id: str = "", **_: Any) -> None:
            token = bound.pop(task_id, None)
            if token is not None:
                context.pop(token)

        @signals.setup_logging.connect(weak=False)
        def _logging(**_: Any) -> None:
            """Celery configures no logging of its own when this signal has a receiver: its
            lines go through the dialer's handler, in the dialer's format."""
            logs.configure(self.settings.log_level, self.settings.log_format)

        @signals.worker_init.connect(weak=False)
        def _serve_metrics(sender: Any = None, **_: Any) -> None:
            """The main process serves the metrics (in multiprocess mode, of its pool's
            processes too)."""
            if getattr(sender, "app", None) is self.celery and self.exporter is None:
                self.exporter = worker_exporter(self.settings)

        @signals.worker_process_shutdown.connect(weak=False)
        def _process_exited(pid: int | None = None, **_: Any) -> None:
            """A prefork child exits: its live gauges leave the multiprocess sum."""
            exposition.process_exited(pid or os.getpid())

        @signals.worker_ready.connect(weak=False)
        def _warm_threads(sender: Any, **_: Any) -> None:
            """A pool of threads runs tasks in this process: get its runtime ready before the
            first task instead of during it (the worker answers pings once this is done). A
            prefork pool's processes build theirs at their first task: warming them at start
            would count against the time Celery gives a new process to report itself up."""
            from celery.concurrency.prefork import TaskPool as Prefork

            if sender.app is self.celery and not isinstance(sender.pool, Prefork):
                self.runtime().warm(connections=sender.controller.concurrency + LANES)

        @signals.worker_shutting_down.connect(weak=False)
        def _asked_to_stop(sender: Any = None, **_: Any) -> None:
            self.stop_requested.set()

        @signals.worker_shutdown.connect(weak=False)
        def _stop_serving_metrics(sender: Any = None, **_: Any) -> None:
            if getattr(sender, "app", None) in (None, self.celery):
                self.close_exporter()

        @signals.worker_process_shutdown.connect(weak=False)  # each process of a prefork pool
        @signals.worker_shutdown.connect(weak=False)  # the worker itself (a pool of threads)
        def _close(sender: Any = None, **_: Any) -> None:
            app = getattr(sender, "app", None)
            if app is None or app is self.celery:  # a prefork child's signal names no app
                self.close()


def _task_ids(name: str, args: Any) -> dict[str, str | int | None]:
    """The context ids a task's arguments give (a dial's attempt, a dispatch's campaign)."""
    arg = args[0] if args else None
    if name == DIAL_TASK:
        return {"attempt_id": arg}
    if name == DISPATCH_TASK:
        return {"campaign_id": arg}
    return {}


def create_worker(settings: Settings) -> DialerWorker:
    return DialerWorker(settings)


def run_worker(worker: DialerWorker, argv: list[str]) -> bool:
    """Run the Celery worker until it ends; True when it ended because it was asked to.

    False is a crash Celery reports as a clean exit, whatever the broker: kombu's Redis
    transport can fail while it hands unacknowledged messages back on a broker connection
    that a Redis restart just closed, and Celery then stops the worker ("Unrecoverable
    error") with status 0; on RabbitMQ an error the consumer cannot recover from ends it the
    same way. The caller starts it again (its tasks were acknowledged late: none is lost,
    RabbitMQ hands them back as the connection closes, Redis after the visibility timeout or
    at once from the outbox, and a dial that comes back finds its attempt claimed).
    """
    try:
        worker.celery.worker_main(with_node_name(argv))
    except SystemExit as exc:
        if exc.code not in (None, 0):
            return False
    return worker.stop_requested.is_set()


def with_node_name(argv: list[str]) -> list[str]:
    """``argv`` naming the worker ``dialer-<pid>@<host>`` unless it names it already.

    Celery's default name, ``celery@<host>``, is the same for every worker of a host; on
    RabbitMQ each worker's remote-control queue (named after it) is exclusive, and a second
    worker of the same name fails to start.
    """
    if any(arg.startswith(("--hostname", "-n")) for arg in argv):
        return argv
    return [*argv, f"--hostname=dialer-{os.getpid()}@%h"]
