"""Error answers: every error is an :class:`ErrorBody`; 422s name each field and its reason."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from dialer.api.json_body import BodyRejected
from dialer.errors import (
    Busy,
    Conflict,
    DialerError,
    IllegalTransition,
    NotFound,
    ProviderError,
    ValidationError,
)

log = logging.getLogger(__name__)


#: Where a request value comes from: not part of the field's name (``query.cursor`` is
#: ``cursor``; no operation has two inputs of one name).
_LOCATIONS = {"body", "query", "path", "header", "cookie"}


def field_path(loc: Sequence[Any]) -> str:
    """``("body", "recipients", 2, "phone_number")`` -> ``recipients.2.phone_number``;
    ``("query", "cursor")`` -> ``cursor``."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    return ".".join(parts) or "body"


def error_response(
    status: int, error: str, message: str, detail: list[dict[str, str]] | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {"error": error, "message": message, "detail": detail or []}
    body.update(extra)
    return JSONResponse(status_code=status, content=body)


def validation_failed(detail: list[dict[str, str]]) -> JSONResponse:
    summary = "; ".join(f"{d['field']}: {d['reason']}" for d in detail[:5])
    return error_response(422, "validation_error", summary or "invalid request", detail)


def _request_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = []
    for err in exc.errors():
        reason = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "json_invalid":  # its loc ends in a character position
            detail.append({"field": "body", "reason": f"not valid JSON: {reason}"})
            continue
        detail.append({"field": field_path(err.get("loc", ())), "reason": reason})
    return validation_failed(detail)


def _dialer_error(_: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ValidationError):
        return validation_failed([{"field": f, "reason": r} for f, r in exc.errors])
    if isinstance(exc, NotFound):
        return error_response(404, "not_found", str(exc))
    if isinstance(exc, IllegalTransition):
        return error_response(409, "conflict", str(exc), state=exc.state, action=exc.action)
    if isinstance(exc, Conflict):
        return error_response(409, "conflict", str(exc))
    if isinstance(exc, ProviderError):
        log.warning("provider request failed: %s", exc)
        return error_response(502, "provider_error", f"the telephony provider failed: {exc}")
    if isinstance(exc, Busy):
        response = error_response(503, "busy", str(exc))
        response.headers["Retry-After"] = "60"
        return response
    log.exception("unhandled dialer error", exc_info=exc)
    return _internal_error()


def _body_rejected(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BodyRejected)
    return validation_failed([{"field": exc.field, "reason": exc.reason}])


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400:
        # The framework could not read the body (e.g. a form it cannot parse): bad input.
        return validation_failed([{"field": "body", "reason": str(exc.detail)}])
    names = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
    response = error_response(exc.status_code, names.get(exc.status_code, "error"), str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405:
        response.headers["Allow"] = ", ".join(allowed_methods(request))
    return response


def allowed_methods(request: Request) -> list[str]:
    """Every method the API document lists for the request's path (each route serves one
    method, so the 405 of the route that matched the path would list only its own)."""
    methods: set[str] = set()
    for template, item in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods.update(m.upper() for m in item if m.upper() in _HTTP_METHODS)
    return sorted(methods)


_HTTP_METHODS = {"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"}


def _unstorable(_: Request, exc: Exception) -> JSONResponse:
    """The database refused a value (a NUL byte, an out-of-range number): bad input, not a
    server fault. The request's transaction has rolled back, so nothing changed."""
    log.info("database refused a value: %s", exc)
    return validation_failed(
        [{"field": "body", "reason": "contains a value that cannot be stored"}]
    )


def _integrity(_: Request, exc: Exception) -> JSONResponse:
    """A write that lost a race with another (two requests creating the same row): the
    request's transaction rolled back, nothing changed, and trying again sees the winner."""
    log.info("write refused by a constraint: %s", exc)
    return error_response(409, "conflict", "a concurrent request changed the same data; retry")


def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return _internal_error()


def _internal_error() -> JSONResponse:
    """A 500 that tells the client the connection ends with it: the server closes it after an
    unhandled error, and a client reusing it would see a reset."""
    response = error_response(500, "internal_error", "internal error")
    response.headers["Connection"] = "close"
    return response


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(BodyRejected, _body_rejected)
    app.add_exception_handler(DialerError, _dialer_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(sqlalchemy.exc.DataError, _unstorable)
    app.add_exception_handler(sqlalchemy.exc.IntegrityError, _integrity)
    app.add_exception_handler(Exception, _unexpected)
