"""Rebuilding the slots after their store lost them (Redis restarted empty, or was flushed).

The store then refuses every acquire and renew (:class:`~dialer.errors.SlotsLost`) rather
than admit calls on top of holders it forgot. Whoever meets the refusal first, a dispatch or
a dial, rebuilds the holders of the calls in flight from the database once its own
transaction is over (the rebuild waits for the dials under way, and a dial holds its
attempt's row lock) and goes on: the pause lasts about one rebuild (that read, and one
reconcile).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Set as AbstractSet

from sqlalchemy.orm import Session, sessionmaker

from dialer.concurrency.slots import CallSlots
from dialer.concurrency.truth import SlotTruth, read_truth
from dialer.errors import SlotsLost
from dialer.observability import metrics

log = logging.getLogger(__name__)


class SlotRebuilder:
    def __init__(
        self, sessions: sessionmaker[Session], slots: CallSlots, *, call_lease_s: float
    ) -> None:
        """``call_lease_s``: the lease the restored holders get (they are calls in flight)."""
        self._sessions = sessions
        self._slots = slots
        self._call_lease_s = call_lease_s
        self._lock = threading.Lock()
        #: Rebuilds this process completed, and how long the last one took, in seconds.
        self.rebuilds = 0
        self.last_rebuild_s = 0.0

    def rebuild(self) -> bool:
        """Restore the holders of the calls in flight; False if the store lost its data again
        meanwhile (the next refusal rebuilds again)."""
        with self._lock:  # one rebuild at a time per process; other processes may run theirs
            started = time.monotonic()

            def truth(observed: AbstractSet[int]) -> SlotTruth:
                with self._sessions() as session, session.begin():
                    return read_truth(session, observed, after_dials=True)

            try:
                result = self._slots.rebuild(truth, self._call_lease_s)
            except SlotsLost:
                log.warning("semaphore: its store lost its data again during a rebuild")
                return False
            self.rebuilds += 1
            metrics.repaired(metrics.SLOTS_REBUILT)
            self.last_rebuild_s = time.monotonic() - started
            log.warning(
                "semaphore: its store was empty or had lost its holders; "
                "rebuilt from the database in %.3f s: %s",
                self.last_rebuild_s,
                result.summary(),
            )
            return True
