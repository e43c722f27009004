"""The ids of what this thread or task is handling, carried by every log line made meanwhile.

An entry point (a dial task, a dispatch, a callback, the scheduler's work on a campaign, an
API request of a tenant) opens :func:`bound` with the ids it knows; code underneath adds what
it learns (:func:`add`, e.g. the campaign once the attempt's row is read). When the entry
point's block ends, the ids it found are restored, whatever was added inside: a thread of a
pool that runs the next task starts from a clean context. Code run outside any entry point
(a test driving a step directly) adds nothing.

The values live in a :class:`contextvars.ContextVar`: each asyncio task has its own, and
Starlette's thread pool runs a request's blocking work in a copy of the request's. Phone
numbers are never context: ids only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType

#: The fields a log line may carry, in the order they are written.
FIELDS = ("tenant_id", "campaign_id", "run_id", "recipient_id", "attempt_id", "call_sid")
_KNOWN = frozenset(FIELDS)
Ids = Mapping[str, str | int]
_EMPTY: Ids = MappingProxyType({})
_ids: ContextVar[Ids] = ContextVar("dialer_log_ids", default=_EMPTY)


def current() -> Ids:
    """The ids bound now (read-only)."""
    return _ids.get()


@contextlib.contextmanager
def bound(**ids: str | int | None) -> Iterator[None]:
    """Bind ``ids`` (those not None) on top of the current ones for the block; the ids from
    before are back when it ends, including anything :func:`add` put in meanwhile."""
    token = push(**ids)
    try:
        yield
    finally:
        pop(token)


def push(**ids: str | int | None) -> Token[Ids]:
    """:func:`bound`'s start, for an entry point whose start and end are two callbacks
    (Celery's ``task_prerun`` and ``task_postrun``): hand the token to :func:`pop`, in the
    same thread."""
    return _ids.set(_merged(_ids.get(), ids))


def pop(token: Token[Ids]) -> None:
    """:func:`bound`'s end: the ids from before :func:`push` are back."""
    _ids.reset(token)


def add(**ids: str | int | None) -> None:
    """Add ``ids`` (those not None) to the current ones, until the enclosing :func:`bound`
    block ends. Outside any such block it does nothing: nothing would take them away, and
    the thread's next work would carry them."""
    current = _ids.get()
    if current is not _EMPTY:
        _ids.set(_merged(current, ids))


def _merged(base: Ids, ids: Mapping[str, str | int | None]) -> Ids:
    if not ids.keys() <= _KNOWN:
        raise ValueError(f"not a context field: {sorted(set(ids) - _KNOWN)}")
    merged = dict(base)
    for name, value in ids.items():
        if value is not None:
            merged[name] = value
    return MappingProxyType(merged)
