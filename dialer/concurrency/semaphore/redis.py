"""The Redis lease semaphore, shared by every worker and the scheduler on every machine.

Each operation is one Lua script (see :mod:`dialer.concurrency.semaphore.scripts`), so it is
atomic and takes its time from Redis. Scripts are sent with ``EVALSHA`` straight on the client,
and loaded again when a restart or failover flushed the server's cache (``NOSCRIPT``). Every
Redis error surfaces as :class:`~dialer.errors.ConcurrencyError`.

``acquire`` and ``release`` are the hot path (one each per call attempt): their scripts answer
a single integer in the common case, and the wrapper does little beyond one round trip.

A restart without persistence (or a flush) loses the holders, and with them the store's
*built marker* (``{prefix}~built``): from then on every acquire and renew raises
:class:`~dialer.errors.SlotsLost` until the holders of the calls in flight are rebuilt from the
database (:func:`~dialer.concurrency.semaphore.base.rebuild_from`), so a forgotten call never
lets another one in over a limit. A fresh Redis is unbuilt too: the first acquire rebuilds it.
Restoring an older snapshot brings an old marker back with old holders: recommend
``maxmemory-policy noeviction`` and AOF (``appendfsync everysec``), and reconcile periodically.
Redis Cluster is not supported (one acquire touches keys in several hash slots).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from dialer.concurrency.keys import SEMAPHORE_PREFIX
from dialer.concurrency.semaphore import scripts
from dialer.concurrency.semaphore.base import (
    Admission,
    Holders,
    Limit,
    Reaped,
    ReapReport,
    ReconcileResult,
    Truth,
    check_keys,
    check_lease,
    plan_reconcile,
    reconcile_result,
)
from dialer.errors import ConcurrencyError, SlotsLost

#: Keys per script call when a whole namespace is scanned (bounds the time Redis is busy).
BATCH_KEYS = 500
#: Key names under the prefix that start with this are the store's own, not semaphores.
_OWN = "~"
#: The answer of an acquire or renew script when the built marker is missing.
_LOST = -1


class RedisSemaphore:
    """A :class:`~dialer.concurrency.semaphore.base.LeaseSemaphore` in Redis sorted sets.

    Works with ``decode_responses`` on or off, on Redis >= 5 and on ``fakeredis[lua]``.
    """

    def __init__(self, client: redis.Redis, *, prefix: str = SEMAPHORE_PREFIX) -> None:
        self._client = client
        self._prefix = prefix
        self._reports = ReapReport()
        self._acquire = client.register_script(scripts.ACQUIRE)
        self._acquire_many = client.register_script(scripts.ACQUIRE_MANY)
        self._renew = client.register_script(scripts.RENEW)
        self._release = client.register_script(scripts.RELEASE)
        self._release_many = client.register_script(scripts.RELEASE_MANY)
        self._count = client.register_script(scripts.COUNT)
        self._snapshot = client.register_script(scripts.SNAPSHOT)
        self._reap = client.register_script(scripts.REAP)
        self._reconcile = client.register_script(scripts.RECONCILE)
        self._finish_rebuild = client.register_script(scripts.FINISH_REBUILD)
        self._built = f"{prefix}{_OWN}built"
        self._building = f"{prefix}{_OWN}building"

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def reaped_total(self) -> int:
        return self._reports.total

    def acquire(self, holder: str, limits: Sequence[Limit], lease_s: float) -> Admission:
        check_lease(lease_s)
        keys = [limit.key for limit in limits]
        check_keys(self._prefix, keys)
        reply = self._call(
            self._acquire,
            len(keys) + 1,
            *keys,
            self._built,
            holder,
            lease_s,
            *(_cap(limit) for limit in limits),
        )
        if isinstance(reply, int):
            if reply == _LOST:
                raise _lost()
            return _GRANTED if reply == 0 else Admission(False, keys[reply - 1])
        self._reports.record([Reaped(keys[int(i) - 1], holder) for i in reply])
        return _GRANTED

    def acquire_many(
        self, requests: Sequence[tuple[str, Sequence[Limit]]], lease_s: float
    ) -> list[Admission]:
        check_lease(lease_s)
        index: dict[str, int] = {}
        args: list[Any] = [lease_s]
        for holder, limits in requests:
            args += [holder, len(limits)]
            for limit in limits:
                args += [index.setdefault(limit.key, len(index) + 1), _cap(limit)]
        keys = list(index)
        check_keys(self._prefix, keys)
        if not requests:
            return []
        reply = self._run(self._acquire_many, [*keys, self._built], args)
        if int(reply[0]) == _LOST:
            raise _lost()
        admissions = []
        at = 0
        for holder, _ in requests:
            admission, at = self._admission(holder, keys, reply, at)
            admissions.append(admission)
        return admissions

    def _admission(
        self, holder: str, keys: Sequence[str], reply: list[Any], at: int
    ) -> tuple[Admission, int]:
        """Decode one acquire's output at ``reply[at]``; report replaced expired leases."""
        full, n = int(reply[at]), int(reply[at + 1])
        if n:
            replaced = reply[at + 2 : at + 2 + n]
            self._reports.record([Reaped(keys[int(i) - 1], holder) for i in replaced])
        return Admission(full == 0, keys[full - 1] if full else None), at + 2 + n

    def renew(self, holder: str, keys: Sequence[str], lease_s: float) -> bool:
        check_lease(lease_s)
        reply = int(self._run(self._renew, [*keys, self._built], [holder, lease_s]))
        if reply == _LOST:
            raise _lost()
        return reply == 1

    def begin_rebuild(self) -> str:
        token = uuid.uuid4().hex
        try:
            self._client.set(self._building, token)
        except redis.RedisError as exc:
            raise ConcurrencyError(f"semaphore store failed: {exc}") from exc
        return token

    def finish_rebuild(self, token: str) -> bool:
        return bool(self._run(self._finish_rebuild, [self._building, self._built], [token]))

    def release(self, holder: str, keys: Sequence[str]) -> bool:
        reply = self._call(self._release, len(keys), *keys, holder)
        if isinstance(reply, int):
            return reply == 1
        self._reports.record([Reaped(keys[int(i) - 1], holder) for i in reply[1:]])
        return int(reply[0]) == 1

    def release_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[bool]:
        index: dict[str, int] = {}
        args: list[Any] = []
        for holder, keys in requests:
            args += [holder, len(keys), *(index.setdefault(k, len(index) + 1) for k in keys)]
        all_keys = list(index)
        reply = self._run(self._release_many, all_keys, args) if requests else []
        results = []
        at = 0
        for holder, _ in requests:
            live, at = self._released(holder, all_keys, reply, at)
            results.append(live)
        return results

    def _released(
        self, holder: str, keys: Sequence[str], reply: list[Any], at: int
    ) -> tuple[bool, int]:
        """Decode one release's output at ``reply[at]``; report leases that had expired."""
        live, n = int(reply[at]), int(reply[at + 1])
        if n:
            expired = reply[at + 2 : at + 2 + n]
            self._reports.record([Reaped(keys[int(i) - 1], holder) for i in expired])
        return bool(live), at + 2 + n

    def count(self, key: str) -> int:
        return int(self._run(self._count, [key], []))

    def holders(self, key: str) -> set[str]:
        return self._snapshot_of([key]).get(key, set())

    def snapshot(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for batch in self._scan_batches():
            found.update(self._snapshot_of(batch))
        return found

    def reap(self, keys: Iterable[str] | None = None) -> list[Reaped]:
        batches = self._scan_batches() if keys is None else _batches(list(keys))
        reaped = []
        for batch in batches:
            reaped += _pairs(batch, self._run(self._reap, batch, []), 0)
        self._reports.record(reaped)
        return reaped

    def reconcile(
        self, truth: Truth, lease_s: float, *, observed: Holders | None = None
    ) -> ReconcileResult:
        check_lease(lease_s)
        check_keys(self._prefix, truth.live)
        if observed is None:
            observed = self.snapshot()
        plans = plan_reconcile(truth, observed)
        changes: dict[str, list[tuple[str, str]]] = {"x": [], "-": [], "+": []}
        for batch in _batches(sorted(plans)):
            args: list[Any] = [lease_s]
            for key in batch:
                plan = plans[key]
                args += [len(plan.remove), *sorted(plan.remove), len(plan.add), *sorted(plan.add)]
            reply = self._run(self._reconcile, batch, args)
            for n in range(0, len(reply), 3):
                change, index, holder = reply[n : n + 3]
                changes[_text(change)].append((batch[int(index) - 1], _text(holder)))
        reaped = [Reaped(key, holder) for key, holder in changes["x"]]
        self._reports.record(reaped)
        return reconcile_result(changes["+"], changes["-"], reaped)

    def _snapshot_of(self, keys: list[str]) -> dict[str, set[str]]:
        reply = self._run(self._snapshot, keys, [])
        found = {}
        at = 0
        for key in keys:
            n = int(reply[at])
            if n:
                found[key] = {_text(h) for h in reply[at + 1 : at + 1 + n]}
            at += n + 1
        return found

    def _scan_batches(self) -> Iterator[list[str]]:
        try:
            names = [
                _text(name)
                for name in self._client.scan_iter(match=_glob_escape(self._prefix) + "*")
            ]
            own = self._prefix + _OWN
            names = [name for name in names if not name.startswith(own)]
        except redis.RedisError as exc:
            raise ConcurrencyError(f"semaphore store failed: {exc}") from exc
        return _batches(sorted(set(names)))

    def _run(self, script: Script, keys: Sequence[str], args: list[Any]) -> Any:
        return self._call(script, len(keys), *keys, *args)

    def _call(self, script: Script, *numkeys_keys_args: Any) -> Any:
        """``EVALSHA`` of ``script`` with (number of keys, keys..., args...), on the client.

        What calling the :class:`~redis.commands.core.Script` does, without its per-call
        copying and checks: the acquire and release hot path is one round trip and little
        else. Loads the script (same text, same sha) and runs it again when the server's cache
        lost it (``NOSCRIPT``).
        """
        client = self._client
        try:
            try:
                return client.evalsha(script.sha, *numkeys_keys_args)
            except NoScriptError:
                client.script_load(script.script)
                return client.evalsha(script.sha, *numkeys_keys_args)
        except redis.RedisError as exc:
            raise ConcurrencyError(f"semaphore store failed: {exc}") from exc


#: The answer to every granted acquire (immutable, so one instance does).
_GRANTED = Admission(True)


def _lost() -> SlotsLost:
    return SlotsLost("the semaphore's store lost its holders: rebuild it from the database")


def _cap(limit: Limit) -> int:
    return -1 if limit.max_holders is None else limit.max_holders


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pairs(keys: Sequence[str], reply: list[Any], start: int) -> list[Reaped]:
    """(key index, holder) pairs flattened in ``reply[start:]``, as :class:`Reaped`."""
    return [
        Reaped(keys[int(reply[n]) - 1], _text(reply[n + 1])) for n in range(start, len(reply), 2)
    ]


def _batches(keys: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(keys), BATCH_KEYS):
        yield keys[start : start + BATCH_KEYS]


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)
