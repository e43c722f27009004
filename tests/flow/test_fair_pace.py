"""Tenants sharing the account's calls per second, through the real dial path."""

from __future__ import annotations

import itertools

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.db.models import CallAttempt, Tenant
from dialer.policy.campaign_state import CampaignAction
from tests.flow.harness import Harness, numbers, profile


def _placed(h: Harness, campaign_id: str) -> int:
    with h.session() as session:
        return (
            session.scalar(
                sa.select(sa.func.count())
                .select_from(CallAttempt)
                .where(
                    CallAttempt.campaign_id == campaign_id,
                    CallAttempt.provider_call_id.is_not(None),
                )
            )
            or 0
        )


def test_a_small_tenant_waiting_alongside_a_busy_one_gets_half_the_starts(
    engine: Engine,
) -> None:
    """One call a second for the account. The busy tenant has a dozen dial tasks waiting for
    their pace at any time, the small one at most 2 (its campaign's cap): first come, first
    served gave the small tenant about one start in 7; shared, it gets every other one."""
    h = Harness(engine, cps=1.0, sim=profile(human=0.0, busy=1.0))  # calls end within 3 s
    big = h.campaign(numbers(40), user="big", max_concurrency=12)
    small = h.campaign(numbers(40, start=5000), user="small", max_concurrency=2)
    h.act(big, CampaignAction.START)
    h.act(small, CampaignAction.START)
    for _ in range(30):
        h.step(1.0)
    placed_big, placed_small = _placed(h, big), _placed(h, small)
    assert placed_big + placed_small <= 31  # the account's pace holds: one a second
    assert placed_small >= 12, (placed_big, placed_small)
    assert placed_big >= 12, (placed_big, placed_small)


def test_a_tenants_cps_cap_holds_on_the_dial_path(engine: Engine) -> None:
    h = Harness(engine, cps=8.0, sim=profile(human=0.0, busy=1.0))
    capped = h.campaign(numbers(30), user="capped", max_concurrency=10)
    with h.session() as session, session.begin():
        session.execute(sa.update(Tenant).where(Tenant.user_id == "capped").values(max_cps=0.5))
    h.act(capped, CampaignAction.START)
    for _ in range(20):
        h.step(1.0)
    with h.session() as session:
        dialed = sorted(
            session.scalars(
                sa.select(CallAttempt.dialed_at).where(
                    CallAttempt.campaign_id == capped, CallAttempt.provider_call_id.is_not(None)
                )
            )
        )
    assert 9 <= len(dialed) <= 11  # 0.5/s for 20 s, not 8/s
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(dialed)]
    assert min(gaps) >= 2.0
