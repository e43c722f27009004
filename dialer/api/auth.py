"""``Authorization: Bearer <api key>`` plus ``X-User-ID``, as in the reference API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from dialer.api.context import ApiContext, context
from dialer.services import tenancy

_bearer = HTTPBearer(auto_error=False, description="An API key from `dialer apikey create`.")
_user = APIKeyHeader(name="X-User-ID", auto_error=False, description="The key's user id.")


def tenant_id(
    ctx: Annotated[ApiContext, Depends(context)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    user_id: Annotated[str | None, Depends(_user)],
) -> str:
    """The authenticated tenant's id; 401 for missing or wrong credentials."""
    if credentials is None or not user_id:
        raise _unauthorized("missing Authorization: Bearer <key> or X-User-ID header")
    with ctx.read() as session:
        tenant = tenancy.authenticate(session, credentials.credentials, user_id)
    if tenant is None:
        raise _unauthorized("invalid API key for this user")
    return tenant.id


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status_code=401, detail=message, headers={"WWW-Authenticate": "Bearer"})


TenantId = Annotated[str, Depends(tenant_id)]
Ctx = Annotated[ApiContext, Depends(context)]
