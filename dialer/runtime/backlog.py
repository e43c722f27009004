"""Work that follows an answer, done off the thread that answers.

The API answers a provider callback once its database transaction committed; freeing the
call's slot and asking the workers to refill it (Redis, the broker) follow on a few threads
of their own. A Redis that stops answering then slows this work, never the answers: each
piece waits out its client's timeouts here, and when the backlog is full new work is dropped
(counted and logged). Nothing dropped is lost: the scheduler's reconcile frees the slots of
ended calls and its ticks dispatch what is due.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Pieces of work waiting at most; beyond, new ones are dropped.
MOST_PENDING = 10_000
_STOP = None


class Backlog:
    def __init__(
        self, *, name: str = "work", threads: int = 2, most_pending: int = MOST_PENDING
    ) -> None:
        self._work: queue.Queue[tuple[str, Callable[[], None]] | None] = queue.Queue(most_pending)
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, name=f"dialer-{name}-{n}", daemon=True)
            for n in range(threads)
        ]
        self._started = False
        self.name = name
        #: Work dropped because the backlog was full, and work that raised.
        self.dropped = 0
        self.failed = 0

    def submit(self, what: str, work: Callable[[], None]) -> bool:
        """Run ``work`` soon on a backlog thread, in a copy of the caller's context (its log
        ids); False (dropped) when the backlog is full."""
        work = functools.partial(contextvars.copy_context().run, work)
        with self._lock:
            if not self._started:
                self._started = True
                for thread in self._threads:
                    thread.start()
        try:
            self._work.put_nowait((what, work))
        except queue.Full:
            self.dropped += 1
            log.warning("%s backlog full: %s dropped (left to the scheduler)", self.name, what)
            return False
        return True

    def pending(self) -> int:
        return self._work.qsize()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until every piece submitted so far has run; False after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._work.all_tasks_done:
            while self._work.unfinished_tasks:
                remaining_s = deadline - time.monotonic()
                if remaining_s <= 0:
                    return False
                self._work.all_tasks_done.wait(remaining_s)
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Let the threads finish what is queued, for ``timeout_s`` at most."""
        if not self._started:
            return
        for _ in self._threads:
            try:
                self._work.put(_STOP, timeout=timeout_s)
            except queue.Full:
                break
        for thread in self._threads:
            thread.join(timeout=timeout_s)

    def _run(self) -> None:
        while (item := self._work.get()) is not _STOP:
            what, work = item
            try:
                work()
            except Exception:
                self.failed += 1
                log.warning("%s failed (left to the scheduler)", what, exc_info=True)
            finally:
                self._work.task_done()
        self._work.task_done()
