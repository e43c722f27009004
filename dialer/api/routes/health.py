"""Liveness and readiness probes (no authentication)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from dialer.api.auth import Ctx
from dialer.api.json_body import JsonRoute

router = APIRouter(tags=["health"], route_class=JsonRoute)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, str] = Field(description="`ok`, or `error: <kind>`, per dependency.")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency does not answer"}},
)
def readyz(ctx: Ctx) -> JSONResponse:
    """The database (and Redis, and Celery's broker when it is not that Redis, when
    configured) answer; 503 naming what does not."""
    checks: dict[str, str] = {}
    try:
        with ctx.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; say which
        checks["database"] = f"error: {type(exc).__name__}"
    if ctx.redis is not None:
        try:
            ctx.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
    if ctx.broker_check is not None:
        try:
            ctx.broker_check()
            checks["broker"] = "ok"
        except Exception as exc:
            checks["broker"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        status_code=200 if ready else 503, content={"ready": ready, "checks": checks}
    )
