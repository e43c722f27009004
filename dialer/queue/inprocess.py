"""The embedded task queue: dial and dispatch work on threads inside the scheduler process.

For the embedded default (no Redis): one process runs the scheduler, the "workers" and the
simulator. :class:`InProcessQueue` is the broker (tasks wait in memory until due; countdowns
are due times), :class:`InProcessWorkers` its consumer, started once the runtime that runs
the tasks exists, as Celery workers are started beside a broker. Nothing survives the process,
which is why it is only for a single machine (the outbox and the reaper still recover attempts
after a restart).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from dialer.queue.base import TaskHandler

log = logging.getLogger(__name__)

TaskKind = Literal["dial", "dispatch"]


@dataclass(order=True, slots=True)
class _Task:
    due: float  # time.monotonic() seconds
    order: int
    kind: TaskKind = field(compare=False)
    arg: int | str = field(compare=False)


class InProcessQueue:
    """A :class:`~dialer.queue.base.TaskQueue` in memory: a heap of tasks by due time."""

    def __init__(self) -> None:
        self._tasks: list[_Task] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._closed = False
        #: Campaigns with a dispatch waiting to start: more requests for them coalesce.
        self._dispatch_pending: set[str] = set()

    def dial(self, attempt_ids: Sequence[int], countdown_s: float = 0.0) -> None:
        due = time.monotonic() + max(countdown_s, 0.0)
        for attempt_id in attempt_ids:
            self._put(_Task(due, next(self._order), "dial", attempt_id))

    def dispatch(self, campaign_id: str) -> None:
        """Ask for a dispatch of the campaign; requests made before one starts share it."""
        with self._changed:
            if campaign_id in self._dispatch_pending:
                return
            self._dispatch_pending.add(campaign_id)
        self._put(_Task(time.monotonic(), next(self._order), "dispatch", campaign_id))

    def dispatch_started(self, campaign_id: str) -> None:
        with self._changed:
            self._dispatch_pending.discard(campaign_id)

    def take(self) -> _Task | None:
        """The next due task, waiting for it; None once the queue is closed."""
        with self._changed:
            while not self._closed:
                wait_s = self._tasks[0].due - time.monotonic() if self._tasks else None
                if wait_s is not None and wait_s <= 0:
                    return heapq.heappop(self._tasks)
                self._changed.wait(timeout=wait_s)
            return None

    def close(self) -> None:
        """Stop handing out tasks; what is still waiting is dropped."""
        with self._changed:
            self._closed = True
            self._tasks.clear()
            self._changed.notify_all()

    def _put(self, task: _Task) -> None:
        with self._changed:
            if self._closed:
                return
            heapq.heappush(self._tasks, task)
            self._changed.notify()


class InProcessWorkers:
    """Threads running the tasks of an :class:`InProcessQueue` on a :class:`TaskHandler`."""

    def __init__(self, queue: InProcessQueue, handler: TaskHandler, threads: int = 8) -> None:
        self._queue = queue
        self._handler = handler
        self._threads = [
            threading.Thread(target=self._work, name=f"dialer-task-{n}", daemon=True)
            for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while (task := self._queue.take()) is not None:
            try:
                if task.kind == "dial":
                    self._handler.run_dial(int(task.arg))
                else:
                    self._handler.run_dispatch(str(task.arg))
            except Exception:
                log.exception("%s task for %s failed", task.kind, task.arg)

    def close(self, timeout_s: float = 10.0) -> None:
        """Close the queue and wait for the running tasks to finish."""
        self._queue.close()
        for thread in self._threads:
            thread.join(timeout=timeout_s)


class RecordOnlyQueue:
    """The task queue of an embedded deployment's API process: nothing is dialed or dispatched
    from it.

    The embedded semaphore lives in the scheduler process, which is the only one that may
    dial. The API records the provider's callbacks; the slot of a call they end is freed by the
    scheduler at its next tick, which then refills it (see ``SchedulerLoop``). Were the API to
    dispatch, it would count slots in a semaphore of its own, empty, and place calls beyond
    ``max_concurrency``.
    """

    def dial(self, attempt_ids: Sequence[int], countdown_s: float = 0.0) -> None:
        log.debug("embedded API: dial of %s left to the scheduler process", list(attempt_ids))

    def dispatch(self, campaign_id: str) -> None:
        log.debug("embedded API: campaign %s is refilled by the scheduler process", campaign_id)

    def dispatch_started(self, campaign_id: str) -> None:
        """Never: nothing is dispatched from here."""
