"""What a failed Twilio request proves about the call, as a provider error type.

* An HTTP answer came back: 429 and 5xx are retryable, other 4xx terminal (no call exists).
* The connection was never made (refused, name not resolved, connect timeout): retryable.
* The request may have reached Twilio (read timeout, connection reset after sending): for a
  request that creates a call this is ambiguous, the call may exist; for any other request it
  is merely retryable.
"""

from __future__ import annotations

import json
from typing import Any

from dialer.errors import (
    AmbiguousProviderError,
    ProviderError,
    RetryableProviderError,
    TerminalProviderError,
)

TOO_MANY_REQUESTS = 429


def provider_error(exc: BaseException, *, may_have_created: bool) -> ProviderError | None:
    """The provider error for ``exc`` raised by the twilio SDK, or None if it is not one."""
    from twilio.base.exceptions import TwilioException

    if isinstance(exc, TwilioException):
        return _http_error(exc)
    return _transport_error(exc, may_have_created=may_have_created)


def error_for_status(status: int, message: str, code: str | None) -> ProviderError:
    """The error an HTTP error answer means: the request was refused, so no call exists."""
    if status == TOO_MANY_REQUESTS or status >= 500:
        return RetryableProviderError(message, code=code, status=status)
    return TerminalProviderError(message, code=code, status=status)


def _http_error(exc: Any) -> ProviderError:
    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    message = getattr(exc, "msg", None) or getattr(exc, "detail", None) or str(exc)
    response = exc.args[1] if len(exc.args) > 1 else None
    if status is None and response is not None:
        # A list page that was not a 200: the SDK raises a bare TwilioException around it.
        status = getattr(response, "status_code", None)
        try:
            body = json.loads(getattr(response, "text", ""))
            code, message = body.get("code", code), body.get("message", message)
        except (TypeError, ValueError, AttributeError):
            pass
    if status is None:
        return TerminalProviderError(f"Twilio: {message}")
    return error_for_status(int(status), f"Twilio: {message}", str(code) if code else None)


def _transport_error(exc: BaseException, *, may_have_created: bool) -> ProviderError | None:
    import requests  # the twilio SDK's HTTP library

    if not isinstance(exc, requests.RequestException):
        return None
    message = f"Twilio unreachable: {type(exc).__name__}: {exc}"
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return TerminalProviderError(message)
    if _never_connected(exc) or not may_have_created:
        return RetryableProviderError(message)
    return AmbiguousProviderError(message)


def _never_connected(exc: BaseException) -> bool:
    """True when no byte of the request can have left: the connection was never made."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        # urllib3's NewConnectionError (refused, unresolvable) is a ConnectTimeoutError.
        if isinstance(current, ConnectTimeoutError | ConnectionRefusedError):
            return True
        if isinstance(current, MaxRetryError) and current.reason is not None:
            pending.append(current.reason)
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)
    return False
