"""JSON request bodies, parsed within bounds: UTF-8 only, nesting capped before the parser
recurses, and every failure a :class:`ValidationError` naming ``body`` (never a character
position). :class:`JsonRoute` makes FastAPI's own body parsing use :func:`loads`."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from dialer.errors import ValidationError

#: Deepest nesting of arrays and objects a body may have: deeper than any body the API
#: accepts (a campaign's dial plan, its recipients, and their metadata of at most
#: ``schemas.json_object.MAX_JSON_DEPTH`` levels), so that the metadata's own limit names the
#: field, and shallow enough that no validator runs out of stack. A body nested 100,000 deep
#: is refused by the parser's own recursion guard.
MAX_BODY_DEPTH = 512


def loads(raw: bytes) -> Any:
    """The JSON document in ``raw``; :class:`ValidationError` on ``body`` when it is not
    UTF-8, not JSON, or nested deeper than :data:`MAX_BODY_DEPTH`. Non-finite numbers
    (``NaN``, ``Infinity``, ``1e400``) parse to floats for the fields' validators to name."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError("body", f"not UTF-8 (byte {exc.start})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            "body", f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:  # the parser gives up long before the stack does
        raise ValidationError("body", f"nested deeper than {MAX_BODY_DEPTH} levels") from None
    if depth_exceeds(document, MAX_BODY_DEPTH):
        raise ValidationError("body", f"nested deeper than {MAX_BODY_DEPTH} levels")
    return document


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects in ``value`` nest more than ``limit`` levels (a scalar is
    level 0, ``[]`` level 1). Iterative: no input can exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if depth + 1 > limit:
                return True
            stack.extend((child, depth + 1) for child in item)
    return False


class BodyRejected(HTTPException):
    """A body :func:`loads` refused. An HTTPException, because FastAPI passes those through
    its body parsing unchanged (any other error there becomes a bare 400)."""

    def __init__(self, error: ValidationError) -> None:
        super().__init__(status_code=422, detail=error.reason)
        self.field = error.field
        self.reason = error.reason


class _JsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = loads(await self.body())
            except ValidationError as exc:
                raise BodyRejected(exc) from None
        return self._json


class JsonRoute(APIRoute):
    """A route whose JSON body is parsed by :func:`loads`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            return await handler(_JsonRequest(request.scope, request.receive))

        return bounded
