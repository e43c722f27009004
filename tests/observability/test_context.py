"""Context ids: bound per thread and task, cleared when the entry point's block ends."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from dialer.observability import context
from dialer.runtime.backlog import Backlog


def test_bound_restores_what_was_there_including_what_was_added_inside() -> None:
    with context.bound(campaign_id="c1"):
        with context.bound(attempt_id=1):
            context.add(recipient_id=5)
            assert dict(context.current()) == {
                "campaign_id": "c1",
                "attempt_id": 1,
                "recipient_id": 5,
            }
        assert dict(context.current()) == {"campaign_id": "c1"}
    assert dict(context.current()) == {}


def test_add_outside_any_entry_point_adds_nothing() -> None:
    """Nothing would take them away: the thread's next work would carry them."""
    context.add(campaign_id="stray")
    assert dict(context.current()) == {}
    with context.bound():
        context.add(campaign_id="c2")
        assert dict(context.current()) == {"campaign_id": "c2"}
    assert dict(context.current()) == {}


def test_bound_restores_after_an_exception() -> None:
    with pytest.raises(RuntimeError), context.bound(attempt_id=3):
        raise RuntimeError
    assert dict(context.current()) == {}


def test_none_values_are_left_out_and_unknown_fields_refused() -> None:
    with context.bound(attempt_id=1, run_id=None):
        assert dict(context.current()) == {"attempt_id": 1}
    with pytest.raises(ValueError, match="phone"), context.bound(phone="+14155550123"):
        pass


def test_a_pooled_thread_starts_its_next_task_clean() -> None:
    """Threads of a pool are reused: what one task bound is gone for the next."""
    seen: list[dict[str, object]] = []

    def task(n: int) -> None:
        seen.append(dict(context.current()))
        with context.bound(attempt_id=n):
            context.add(campaign_id=f"c{n}")
            seen.append(dict(context.current()))

    with ThreadPoolExecutor(max_workers=1) as pool:
        for n in range(3):
            pool.submit(task, n).result()
    assert seen == [
        {},
        {"attempt_id": 0, "campaign_id": "c0"},
        {},
        {"attempt_id": 1, "campaign_id": "c1"},
        {},
        {"attempt_id": 2, "campaign_id": "c2"},
    ]


def test_threads_do_not_see_each_others_ids() -> None:
    barrier = threading.Barrier(2)
    seen: dict[int, dict[str, object]] = {}

    def work(n: int) -> None:
        with context.bound(attempt_id=n):
            barrier.wait(timeout=5)
            seen[n] = dict(context.current())

    threads = [threading.Thread(target=work, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {1: {"attempt_id": 1}, 2: {"attempt_id": 2}}


def test_concurrent_requests_keep_their_own_ids() -> None:
    async def request(tenant: str) -> dict[str, object]:
        with context.bound(tenant_id=tenant):
            await asyncio.sleep(0)
            return dict(await asyncio.to_thread(lambda: dict(context.current())))

    async def both() -> list[dict[str, object]]:
        return list(await asyncio.gather(request("a"), request("b")))

    assert asyncio.run(both()) == [{"tenant_id": "a"}, {"tenant_id": "b"}]


def test_backlog_work_runs_with_the_ids_of_whoever_submitted_it() -> None:
    backlog = Backlog(name="test", threads=1)
    seen: list[dict[str, object]] = []
    try:
        with context.bound(attempt_id=11, call_sid="CA1"):
            backlog.submit("work", lambda: seen.append(dict(context.current())))
        backlog.submit("more", lambda: seen.append(dict(context.current())))
        assert backlog.wait_idle(5)
    finally:
        backlog.close()
    assert seen == [{"attempt_id": 11, "call_sid": "CA1"}, {}]
