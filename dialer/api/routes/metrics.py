"""``GET /metrics``: Prometheus' text exposition of this process (no authentication).

Not a tenant route, and not in the OpenAPI document: it reports every tenant's campaigns, so
keep it off the public network (let the proxy in front of the API refuse it, and let
Prometheus scrape the API's port from inside).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dialer.observability.exposition import CONTENT_TYPE, Scrape

router = APIRouter(include_in_schema=False)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """The families of this process (of all the API's processes in multiprocess mode), the
    per-campaign gauges and the queue depth, read now (in a worker thread: they query)."""
    scrape: Scrape = request.app.state.scrape
    return Response(content=scrape.text(), media_type=CONTENT_TYPE)
