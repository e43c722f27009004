"""The call path records what it does: a whole campaign on the simulator, then its metrics
compared with the database's record of it."""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine

from dialer.calls.results import DialResult
from dialer.db.models import CallAttempt, Recipient
from dialer.policy.attempt_state import AttemptStatus, Outcome
from dialer.policy.campaign_state import CampaignAction
from tests.flow.harness import Harness, numbers, profile

COUNTERS = (
    ("dialer_dials_total", "result", [r.value for r in DialResult]),
    ("dialer_call_outcomes_total", "outcome", [o.value for o in Outcome]),
    ("dialer_retries_scheduled_total", "outcome", [o.value for o in Outcome]),
    ("dialer_callbacks_received_total", "kind", ["status", "amd", "stream"]),
)


def snapshot() -> dict[tuple[str, str], float]:
    values = {
        (name, value): REGISTRY.get_sample_value(name, {label: value}) or 0.0
        for name, label, values in COUNTERS
        for value in values
    }
    for name in ("dialer_dial_latency_seconds_count", "dialer_callback_seconds_count"):
        values[(name, "")] = REGISTRY.get_sample_value(name) or 0.0
    return values


def test_a_campaign_s_dials_ends_retries_and_callbacks_are_counted(engine: Engine) -> None:
    h = Harness(engine, sim=profile(human=1, busy=1, no_answer=1), cps=1000.0)
    cid = h.campaign(numbers(12), max_concurrency=3)
    before = snapshot()
    h.act(cid, CampaignAction.START)
    h.run_until_done(cid, seconds=30.0)
    after = snapshot()
    delta = {key: after[key] - before[key] for key in after}

    with h.session() as session:
        attempts = list(
            session.scalars(sa.select(CallAttempt).where(CallAttempt.campaign_id == cid))
        )
        recipients = session.scalar(
            sa.select(sa.func.count()).select_from(Recipient).where(Recipient.campaign_id == cid)
        )
    placed = [a for a in attempts if a.provider_call_id is not None]
    assert all(a.status is AttemptStatus.ENDED for a in attempts)
    assert delta[("dialer_dials_total", "dialed")] == len(placed) > 12
    assert delta[("dialer_dial_latency_seconds_count", "")] == len(placed)
    outcomes = Counter(a.outcome.value for a in attempts if a.outcome is not None)
    for outcome in Outcome:
        assert delta[("dialer_call_outcomes_total", outcome.value)] == outcomes[outcome.value]
    # Every attempt but each recipient's last scheduled a retry (the policy allows 3).
    retries = sum(delta[("dialer_retries_scheduled_total", o.value)] for o in Outcome)
    assert retries == len(attempts) - recipients
    assert delta[("dialer_retries_scheduled_total", "human")] == 0
    received = (
        delta[("dialer_callbacks_received_total", "status")]
        + delta[("dialer_callbacks_received_total", "amd")]
        + delta[("dialer_callbacks_received_total", "stream")]
    )
    assert received > 0
    assert delta[("dialer_callback_seconds_count", "")] == received
