"""A campaign dialed for real while a command watches: the embedded scheduler (in-memory
semaphore, simulator sped up, dial tasks on threads of this process) on a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine

from dialer.calls.dispatch import DispatchConfig
from dialer.db.engine import session_factory
from dialer.db.models import Campaign
from dialer.policy.campaign_state import CampaignStatus
from dialer.runtime import embedded_runtime
from dialer.settings import Settings
from scheduler.loop import SchedulerLoop

#: Short calls of every kind, so a run has answers, voicemails, busy lines and retries.
CALLEES = "weights=human=3,voicemail=1,busy=1,no_answer=1;setup=fixed:0.5;ring=fixed:1;talk=fixed:2"


@contextmanager
def scheduler_running(engine: Engine, *, seed: int = 5) -> Iterator[None]:
    """The embedded scheduler dialing the database's running campaigns until the block ends."""
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        redis_url=None,
        calls_per_second=50,
        simulator_seed=seed,
        simulator_time_scale=0.01,
        simulator_profile=CALLEES,
        log_level="WARNING",
    )
    runtime = embedded_runtime(settings, dispatch=DispatchConfig(round_size=10), threads=5)
    loop = SchedulerLoop(runtime, interval_s=0.05, reconcile_interval_s=5.0)
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), name="test-scheduler", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
        runtime.close()


def wait_completed(engine: Engine, campaign_id: str, timeout_s: float = 60.0) -> None:
    sessions = session_factory(engine)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with sessions() as session:
            if session.get_one(Campaign, campaign_id).status is CampaignStatus.COMPLETED:
                return
        time.sleep(0.1)
    raise AssertionError(f"campaign {campaign_id} did not complete in {timeout_s:.0f} s")
