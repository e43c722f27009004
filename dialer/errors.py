"""The one error hierarchy of the dialer.

Every error the product raises on purpose derives from :class:`DialerError`. The API maps
the families to HTTP statuses (validation -> 422, not found -> 404, conflict -> 409); workers
branch on the provider error *types*, never on message strings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager


class DialerError(Exception):
    """Root of every error the dialer raises on purpose."""


class ConfigurationError(DialerError):
    """Settings are missing or invalid; raised at start-up, naming the variable."""


class ValidationError(DialerError):
    """Input is malformed. ``field`` is the dotted path of the offending field; ``errors``
    lists every offending field with its reason (this one first), so that one answer can name
    them all (:class:`FieldErrors` collects them)."""

    def __init__(self, field: str, reason: str, *, more: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__("; ".join(f"{f}: {r}" for f, r in [(field, reason), *more]))
        self.field = field
        self.reason = reason
        self.errors: list[tuple[str, str]] = [(field, reason), *more]


class FieldErrors:
    """Validation errors collected across several checks, raised together.

    ``with errors.check(): ...`` runs one check and keeps the :class:`ValidationError` it
    raises (every field it names); :meth:`raise_any` raises one error naming them all, the
    first found first. A check that depends on another's result runs after ``raise_any``.
    """

    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def add(self, field: str, reason: str) -> None:
        self.errors.append((field, reason))

    @contextmanager
    def check(self) -> Iterator[None]:
        try:
            yield
        except ValidationError as exc:
            self.errors.extend(exc.errors)

    def raise_any(self) -> None:
        if self.errors:
            (field, reason), *more = self.errors
            raise ValidationError(field, reason, more=more)


class InvalidPhoneNumber(ValidationError):
    """A phone number could not be parsed or is not a valid, dialable number."""


class NotFound(DialerError):
    """A resource does not exist, or belongs to another tenant (indistinguishable on purpose)."""


class Conflict(DialerError):
    """The request is well formed but conflicts with the resource's state (the API answers 409)."""


class Busy(DialerError):
    """The server has no room for the work now; the same request may succeed later (503)."""


class IllegalTransition(Conflict):
    """An action or event is not legal in the current state (the API answers 409)."""

    def __init__(self, kind: str, state: str, action: str) -> None:
        super().__init__(f"cannot {action} a {kind} that is {state}")
        self.kind = kind
        self.state = state
        self.action = action


class ProviderError(DialerError):
    """A telephony provider refused or failed a request."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class RetryableProviderError(ProviderError):
    """No call exists and trying again later may succeed (429, 5xx before the call exists)."""


class TerminalProviderError(ProviderError):
    """No call exists and trying again will not help (4xx: bad number, bad credentials...)."""


class AmbiguousProviderError(ProviderError):
    """The request may or may not have created a call (timeout): reconcile, never re-dial."""


class ConcurrencyError(DialerError):
    """The concurrency store failed or is unreachable."""


class SlotsLost(ConcurrencyError):
    """The semaphore's store lost its holders (Redis restarted empty, or was flushed): it
    admits nothing until it is rebuilt from the database (see
    :func:`dialer.concurrency.semaphore.base.rebuild_from`)."""
