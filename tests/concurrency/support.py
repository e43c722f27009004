"""Helpers shared by the semaphore tests."""

from __future__ import annotations

from dialer.concurrency.semaphore.redis import RedisSemaphore


def built(semaphore: RedisSemaphore) -> RedisSemaphore:
    """``semaphore`` on a store marked built, as a first rebuild from an empty database leaves
    it: a fresh Redis admits nothing until then (see ``SlotsLost``)."""
    assert semaphore.finish_rebuild(semaphore.begin_rebuild())
    return semaphore
