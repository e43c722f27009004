"""A campaign's history: every change, who made it, and when (append-only).

Who: an API key (its id and prefix, never the key), ``operator`` (the ``dialer`` command line
on the host) or ``system`` (the dialer itself: a campaign completing, its window closing).
Each entry is written in the transaction of the change it records, so a change and its
record commit together or not at all.

A field's old and new values are recorded as they are, except text longer than
:data:`MAX_TEXT_CHARS` (a campaign context can run to thousands of characters), recorded as
its length and SHA-256: enough to prove which version was in force and when, without a copy
of every version of a large text, which may hold personal data, in every entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.db.models import Campaign, CampaignHistory
from dialer.errors import NotFound

#: Text longer than this is recorded as its length and digest.
MAX_TEXT_CHARS = 200


class ActorKind(StrEnum):
    API_KEY = "api-key"
    OPERATOR = "operator"
    SYSTEM = "system"


class Kind(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    ACTION = "action"
    RECIPIENTS_ADDED = "recipients_added"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change."""

    kind: ActorKind
    api_key_id: str | None = None
    api_key_prefix: str | None = None

    @classmethod
    def api_key(cls, key_id: str, prefix: str) -> Actor:
        return cls(ActorKind.API_KEY, key_id, prefix)


OPERATOR = Actor(ActorKind.OPERATOR)
SYSTEM = Actor(ActorKind.SYSTEM)


def record(
    session: Session,
    campaign: Campaign,
    actor: Actor,
    kind: Kind,
    details: Mapping[str, Any],
    *,
    now: datetime,
) -> None:
    """Append one entry about ``campaign``, in the caller's transaction."""
    session.add(
        CampaignHistory(
            tenant_id=campaign.tenant_id,
            campaign_id=campaign.id,
            at=now,
            actor=actor.kind.value,
            api_key_id=actor.api_key_id,
            api_key_prefix=actor.api_key_prefix,
            kind=kind.value,
            details=dict(details),
        )
    )


def snapshot(campaign: Campaign, names: tuple[str, ...]) -> dict[str, Any]:
    """The recordable values of ``names`` on ``campaign`` (for :func:`changes`)."""
    return {name: recordable(getattr(campaign, name)) for name in names}


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """``{field: {"old": ..., "new": ...}}`` for the fields whose value really changed."""
    return {
        name: {"old": before.get(name), "new": value}
        for name, value in after.items()
        if value != before.get(name)
    }


def recordable(value: Any) -> Any:
    """``value`` as JSON: times in ISO 8601, long text as its length and digest."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
        digest = hashlib.sha256(value.encode()).hexdigest()
        return {"length": len(value), "sha256": digest}
    return value


def page(
    session: Session,
    tenant_id: str,
    campaign_id: str,
    *,
    newest_first: bool,
    after_id: int | None,
    limit: int,
) -> list[CampaignHistory]:
    """A page of the campaign's history, in order of recording (``id``). :class:`NotFound`
    when the tenant has no such campaign and no history of one (a deleted campaign keeps its
    history)."""
    order = CampaignHistory.id.desc() if newest_first else CampaignHistory.id
    stmt = sa.select(CampaignHistory).where(
        CampaignHistory.tenant_id == tenant_id, CampaignHistory.campaign_id == campaign_id
    )
    if after_id is not None:
        stmt = stmt.where(
            CampaignHistory.id < after_id if newest_first else CampaignHistory.id > after_id
        )
    rows = list(session.scalars(stmt.order_by(order).limit(limit)))
    if not rows and after_id is None:
        exists = session.scalar(
            sa.select(sa.literal(True)).where(
                Campaign.id == campaign_id, Campaign.tenant_id == tenant_id
            )
        )
        if not exists:
            raise NotFound(f"campaign {campaign_id} not found")
    return rows
