"""``Authorization: Bearer <api key>`` plus ``X-User-ID``, as in the reference API.

The credentials are checked by :class:`~dialer.api.guard.RequestGuard` before a byte of the
body is read, on every route whose dependencies include :func:`tenant_id` (the others are
public: the probes, the documentation, the providers' webhooks). The guard leaves the tenant
in the request's scope; :data:`TenantId` hands it to the route.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import RouteContext
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from dialer.api.context import ApiContext, context
from dialer.services import history, tenancy

_bearer = HTTPBearer(auto_error=False, description="An API key from `dialer apikey create`.")
_user = APIKeyHeader(name="X-User-ID", auto_error=False, description="The key's user id.")

#: Where the guard leaves the authenticated tenant's id in the ASGI scope.
TENANT_SCOPE_KEY = "dialer.tenant_id"
#: ...and the :class:`Principal` (the tenant and the key).
PRINCIPAL_SCOPE_KEY = "dialer.principal"
MISSING = "missing Authorization: Bearer <key> or X-User-ID header"
INVALID = "invalid API key for this user"


async def tenant_id(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    user_id: Annotated[str | None, Depends(_user)],
) -> str:
    """The tenant the guard authenticated. ``credentials`` and ``user_id`` are here for the
    OpenAPI document's security declaration; the guard has already checked them."""
    tenant = request.scope.get(TENANT_SCOPE_KEY)
    if not isinstance(tenant, str):
        # Only reachable when the app runs without its guard: refuse rather than serve.
        raise HTTPException(status_code=401, detail=MISSING, headers={"WWW-Authenticate": "Bearer"})
    return tenant


def credentials_of(authorization: str | None, user_id: str | None) -> tuple[str, str] | None:
    """The API key and user id a request presents, or None when either is missing."""
    scheme, key = get_authorization_scheme_param(authorization)
    if scheme.lower() != "bearer" or not key or not user_id:
        return None
    return key, user_id


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request authenticated as: the tenant, and the key (its id and prefix, for the
    record of what it changed)."""

    tenant_id: str
    key_id: str
    key_prefix: str


def authenticator(ctx: ApiContext) -> Callable[[str, str], Principal | None]:
    """Who presents a valid key of a user, or None (blocking: run it in a thread)."""

    def authenticate(key: str, user_id: str) -> Principal | None:
        with ctx.read() as session:
            found = tenancy.authenticate(session, key, user_id)
            if found is None:
                return None
            tenant, api_key = found
            return Principal(tenant.id, api_key.id, api_key.prefix)

    return authenticate


async def actor(request: Request, tenant: Annotated[str, Depends(tenant_id)]) -> history.Actor:
    """The API key a request authenticated with, as the author of the changes it makes."""
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if not isinstance(principal, Principal) or principal.tenant_id != tenant:
        raise HTTPException(status_code=401, detail=MISSING, headers={"WWW-Authenticate": "Bearer"})
    return history.Actor.api_key(principal.key_id, principal.key_prefix)


def requires_tenant(route: RouteContext) -> bool:
    """Whether ``route`` depends, directly or not, on :func:`tenant_id`."""
    dependant: Dependant | None = getattr(route, "dependant", None)
    pending = [] if dependant is None else [dependant]
    while pending:
        current = pending.pop()
        if current.call is tenant_id:
            return True
        pending.extend(current.dependencies)
    return False


TenantId = Annotated[str, Depends(tenant_id)]
#: The author of a change: the request's API key.
KeyActor = Annotated[history.Actor, Depends(actor)]
Ctx = Annotated[ApiContext, Depends(context)]
