"""JSON request bodies, parsed within bounds: UTF-8 only, nesting capped before the parser
recurses, and every failure a :class:`ValidationError` naming ``body`` and saying where, in
words (``line 3, column 14: expected ',' or '}' after an object member``).
:class:`JsonRoute` makes FastAPI's own body parsing use :func:`loads`."""

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
        raise ValidationError("body", f"not valid JSON: {describe(exc)}") from None
    except RecursionError:  # the parser gives up long before the stack does
        raise ValidationError("body", f"nested deeper than {MAX_BODY_DEPTH} levels") from None
    if depth_exceeds(document, MAX_BODY_DEPTH):
        raise ValidationError("body", f"nested deeper than {MAX_BODY_DEPTH} levels")
    return document


def describe(exc: json.JSONDecodeError) -> str:
    """Where the parser stopped and what it expected there, in words: ``line L, column C:
    ...`` (the parser's own messages name no container and no cause)."""
    text, pos = exc.doc, exc.pos
    where = f"line {exc.lineno}, column {exc.colno}"
    if not text.strip():
        return "the body is empty: expected a JSON document"
    message = exc.msg
    if message == "Expecting value":
        if not text[pos:].strip():
            what = "the body ends early: expected a value"
        elif _last_significant(text, pos) == ",":
            what = "expected a value after ',' (a trailing comma is not allowed)"
        else:
            what = "expected a value (a string, number, object, array, true, false or null)"
    elif message == "Expecting ',' delimiter":
        if not text[pos:].strip():
            closer = "}" if _innermost(text, pos) == "{" else "]"
            what = f"the body ends early: expected ',' or '{closer}'"
        elif _innermost(text, pos) == "{":
            what = "expected ',' or '}' after an object member"
        else:
            what = "expected ',' or ']' after an array element"
    elif message == "Expecting ':' delimiter":
        what = "expected ':' after an object member's name"
    elif message.startswith("Expecting property name"):
        if _last_significant(text, pos) == ",":
            what = "expected a member name in double quotes after ','"
            what += " (a trailing comma is not allowed)"
        else:
            what = "expected a member name in double quotes, or '}'"
    elif message.startswith("Unterminated string"):
        what = "a string starts here and is not closed: expected '\"' to end it"
    elif message.startswith("Invalid control character"):
        what = "a control character inside a string must be escaped (e.g. \\n)"
    elif message.startswith("Invalid \\uXXXX"):
        what = "invalid \\u escape: expected 4 hexadecimal digits"
    elif message.startswith("Invalid \\escape"):
        what = 'invalid escape in a string (valid: \\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)'
    elif message == "Extra data":
        what = "unexpected data after the end of the JSON document"
    else:
        what = message[:1].lower() + message[1:]
    return f"{where}: {what}"


def _last_significant(text: str, pos: int) -> str:
    """The last character before ``pos`` that is not white space ("" if none)."""
    stripped = text[:pos].rstrip()
    return stripped[-1:] if stripped else ""


def _innermost(text: str, pos: int) -> str:
    """The opening bracket (``{`` or ``[``) of the innermost container open at ``pos``."""
    stack: list[str] = []
    in_string = escaped = False
    for char in text[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append(char)
        elif char in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


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
