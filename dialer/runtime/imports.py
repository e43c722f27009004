"""The API process's list imports: a few threads of their own, off the requests.

An import takes a slot before its list is created; with every slot taken, the upload waits
a few seconds for one (a burst of small lists), then is refused (503, try again) rather than
queued, so no list waits unseen behind others with no heartbeat of its own. On shutdown the
runner sets ``stopping``: each running import stops after its chunk and marks its list
``failed`` (``interrupted``). A process that dies without that leaves its lists
``importing`` with a heartbeat that goes stale, and any process reading them marks them
failed (see :mod:`dialer.services.recipient_lists`).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable

from dialer.errors import Busy

log = logging.getLogger(__name__)

#: Imports one API process runs at once.
MOST_RUNNING = 4
#: Longest an upload waits for a slot before it is refused, in seconds (it waits on a
#: request thread, never on the event loop).
RESERVE_WAIT_S = 5.0
#: The interpreter's thread switch interval while imports may run, in seconds. An import is
#: CPU-bound Python; with the default (5 ms) a request thread whose database answer arrived
#: waits up to that long for the GIL each time, and a request makes a dozen round trips.
SWITCH_INTERVAL_S = 0.0005


class Slot:
    """A reserved place for one import: :meth:`start` it, or :meth:`release` it unused."""

    def __init__(self, runner: ImportRunner) -> None:
        self._runner = runner
        self._used = False

    def start(self, what: str, work: Callable[[threading.Event], object]) -> None:
        """Run ``work(stopping)`` on a thread of its own; the slot is freed when it ends."""
        self._used = True
        self._runner._start(what, work)

    def release(self) -> None:
        if not self._used:
            self._used = True
            self._runner._slots.release()


class ImportRunner:
    def __init__(
        self, *, most_running: int = MOST_RUNNING, reserve_wait_s: float = RESERVE_WAIT_S
    ) -> None:
        self._slots = threading.BoundedSemaphore(most_running)
        self._reserve_wait_s = reserve_wait_s
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        #: Set on shutdown: running imports stop at their next chunk.
        self.stopping = threading.Event()
        self.failed = 0

    def reserve(self) -> Slot:
        """A slot for one import, or :class:`~dialer.errors.Busy` when all stay taken for
        ``reserve_wait_s``."""
        if self.stopping.is_set() or not self._slots.acquire(timeout=self._reserve_wait_s):
            raise Busy("too many list imports are running; try again in a minute")
        return Slot(self)

    def running(self) -> int:
        with self._lock:
            return len(self._threads)

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no import runs; False after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                threads = list(self._threads)
            if not threads:
                return True
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                return self.running() == 0

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the running imports (each marks its list failed) and wait for them."""
        self.stopping.set()
        if not self.wait_idle(timeout_s):
            log.warning("%d list imports still running at shutdown", self.running())

    def _start(self, what: str, work: Callable[[threading.Event], object]) -> None:
        if sys.getswitchinterval() > SWITCH_INTERVAL_S:
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        thread = threading.Thread(
            target=self._run, args=(what, work), name="dialer-import", daemon=True
        )
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _run(self, what: str, work: Callable[[threading.Event], object]) -> None:
        try:
            work(self.stopping)
        except Exception:
            self.failed += 1
            log.exception("%s failed", what)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())
            self._slots.release()
