"""``/campaign/{id}/history``: every change to a campaign, who made it, and when."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query

from dialer.api import pagination
from dialer.api.auth import Ctx, TenantId
from dialer.api.json_body import JsonRoute
from dialer.api.routes.campaigns import ERRORS
from dialer.api.schemas.common import Page
from dialer.api.schemas.history import HistoryEntryOut
from dialer.services import history

router = APIRouter(tags=["campaigns"], route_class=JsonRoute)


class Order(StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"


@router.get(
    "/campaign/{campaign_id}/history", response_model=Page[HistoryEntryOut], responses=ERRORS
)
def campaign_history(
    campaign_id: str,
    ctx: Ctx,
    tenant: TenantId,
    order: Order = Order.NEWEST,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_PAGE)] = pagination.DEFAULT_PAGE,
    cursor: pagination.Cursor = None,
) -> Page[HistoryEntryOut]:
    """The campaign's changes, newest first (``order=oldest``: in the order they were made):
    fields changed with old and new values, actions, recipients added, and the dialer's own
    (completion, window closed), each with the API key, ``operator`` or ``system`` that made
    it. A deleted campaign's history stays readable."""
    after = pagination.decode_id(cursor) if cursor is not None else None
    with ctx.read() as session:
        rows = history.page(
            session,
            tenant,
            campaign_id,
            newest_first=order is Order.NEWEST,
            after_id=after,
            limit=limit + 1,
        )
    page, next_cursor = pagination.by_id(rows, limit)
    return Page[HistoryEntryOut](
        data=[HistoryEntryOut.model_validate(r) for r in page], next_cursor=next_cursor
    )
