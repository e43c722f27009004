"""The OpenAPI document, made to say what the server does: every error answer in our
:class:`ErrorBody` shape (FastAPI's default ``HTTPValidationError`` is not what we send),
both credentials required together, and the answers any operation can give."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from dialer.api.schemas.common import ErrorBody

_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_JSON_ERROR = {"application/json": {"schema": _ERROR_REF}}

#: Answers every operation can give, whatever its route declares: bad input anywhere in the
#: request (the URL included) and an unexpected fault.
COMMON_RESPONSES = {
    "422": "Invalid input: each field and its reason (`body` when the body is not JSON)",
    "500": "Unexpected server fault",
}
#: Answers of operations that need credentials.
AUTHENTICATED_RESPONSES = {"401": "Missing or wrong credentials"}
_FRAMEWORK_SCHEMAS = ("HTTPValidationError", "ValidationError")


def install(app: FastAPI) -> None:
    """Replace ``app.openapi`` with :func:`document` (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(app: FastAPI) -> dict[str, Any]:
    spec = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in _FRAMEWORK_SCHEMAS:
        schemas.pop(name, None)
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorBody"] = error_schema
    for path_item in spec.get("paths", {}).values():
        for operation in path_item.values():
            _complete(operation)
    return spec


def _complete(operation: dict[str, Any]) -> None:
    security = operation.get("security")
    if security:
        # FastAPI lists one requirement per scheme, which OpenAPI reads as "either"; the
        # server needs the key and the user id together: one requirement naming both.
        merged: dict[str, list[str]] = {}
        for requirement in security:
            merged.update(requirement)
        operation["security"] = [merged]
    responses: dict[str, Any] = operation.setdefault("responses", {})
    expected = {**COMMON_RESPONSES, **(AUTHENTICATED_RESPONSES if security else {})}
    for status, description in expected.items():
        responses.setdefault(status, {"description": description})
    for status, response in responses.items():
        if status[0] in "45" and (status == "422" or "content" not in response):
            response["content"] = _JSON_ERROR
        if response.get("description") == "Validation Error":  # FastAPI's, for its own shape
            response["description"] = COMMON_RESPONSES["422"]
