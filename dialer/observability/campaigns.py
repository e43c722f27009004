"""The per-campaign gauges, read when a scrape asks, for running and paused campaigns only.

A few queries per scrape (the live campaigns, their calls in flight, their counters) and one
semaphore read per campaign; nothing on the call path. A scrape whose reads fail logs the
failure and answers without these gauges rather than fail whole.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from dialer.calls import counters
from dialer.concurrency.slots import CallSlots
from dialer.db.models import CallAttempt, Campaign
from dialer.policy.attempt_state import AttemptStatus, RecipientStatus
from dialer.policy.campaign_state import CampaignStatus

log = logging.getLogger(__name__)

#: Attempts whose call the provider has, or may have: placed and not ended.
_IN_FLIGHT = (AttemptStatus.DIALING, AttemptStatus.RINGING, AttemptStatus.IN_PROGRESS)
_LIVE = (CampaignStatus.RUNNING, CampaignStatus.PAUSED)
_LABELS = ["campaign", "tenant"]


@dataclass(frozen=True, slots=True)
class _Live:
    campaign_id: str
    tenant_id: str
    max_concurrency: int


class CampaignGauges(Collector):
    """``dialer_campaign_*`` from the database and, when given, the semaphore's ``slots``
    (omit them where this process's semaphore is not the fleet's: an embedded API's)."""

    def __init__(self, sessions: sessionmaker[Session], slots: CallSlots | None) -> None:
        self._sessions = sessions
        self._slots = slots

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # collected only when scraped, never at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            families = self._families()
        except Exception:
            log.warning("campaign gauges not collected", exc_info=True)
            return
        yield from families

    def _families(self) -> list[GaugeMetricFamily]:
        with self._sessions() as session:
            live = [
                _Live(*row)
                for row in session.execute(
                    sa.select(Campaign.id, Campaign.tenant_id, Campaign.max_concurrency)
                    .where(Campaign.status.in_(_LIVE))
                    .order_by(Campaign.id)
                )
            ]
            ids = [c.campaign_id for c in live]
            in_flight: dict[str, int] = {}
            if ids:
                rows = session.execute(
                    sa.select(CallAttempt.campaign_id, sa.func.count())
                    .where(CallAttempt.campaign_id.in_(ids), CallAttempt.status.in_(_IN_FLIGHT))
                    .group_by(CallAttempt.campaign_id)
                )
                in_flight = {campaign_id: int(n) for campaign_id, n in rows}
            counts = counters.read(session, ids)
        calls = GaugeMetricFamily(
            "dialer_campaign_calls_in_flight",
            "Calls placed and not ended (database).",
            labels=_LABELS,
        )
        limit = GaugeMetricFamily(
            "dialer_campaign_slots_limit", "The campaign's max_concurrency.", labels=_LABELS
        )
        recipients = GaugeMetricFamily(
            "dialer_campaign_recipients",
            "The campaign's recipients by state.",
            labels=[*_LABELS, "state"],
        )
        used = GaugeMetricFamily(
            "dialer_campaign_slots_in_use", "Semaphore leases held.", labels=_LABELS
        )
        for c in live:
            labels = [c.campaign_id, c.tenant_id]
            calls.add_metric(labels, in_flight.get(c.campaign_id, 0))
            limit.add_metric(labels, c.max_concurrency)
            values = counts[c.campaign_id]
            for state in RecipientStatus:
                recipients.add_metric([*labels, state.value], values[counters.recipient_key(state)])
            if self._slots is not None:
                used.add_metric(labels, self._slots.in_use(c.campaign_id))
        families = [calls, limit, recipients]
        return [*families, used] if self._slots is not None else families
