"""The task queue port, and the two tasks that cross it (ids only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class TaskQueue(Protocol):
    """Where dial and dispatch work goes. Delivery is at least once: both tasks are idempotent.

    ``dial``: place the call of each queued attempt (after ``countdown_s`` seconds).
    ``dispatch``: a campaign has free slots (a call ended, it started): claim into them.
    Requests to dispatch one campaign made before a dispatch of it starts may coalesce.
    """

    def dial(self, attempt_ids: Sequence[int], countdown_s: float = 0.0) -> None: ...

    def dispatch(self, campaign_id: str) -> None: ...

    def dispatch_started(self, campaign_id: str) -> None:
        """A dispatch of the campaign starts: a request made from now on asks for another
        (the slots it would fill may free after this one has looked)."""
        ...


class TaskHandler(Protocol):
    """What runs the tasks (a worker's runtime): the bodies of the dial and dispatch tasks."""

    def run_dial(self, attempt_id: int) -> object: ...

    def run_dispatch(self, campaign_id: str) -> object: ...
