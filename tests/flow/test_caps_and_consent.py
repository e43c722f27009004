"""Frequency caps on one number across a tenant's campaigns, and consent, end to end.

The history the caps read is written by the dial (and the claim that starts a call in place),
removed when the provider refuses the call, and marked when a person answers; the screen reads
it at claim and again at the dial. A capped recipient waits until the cap frees, with the cap
as its reason, and is never ended for it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer.calls import contacts
from dialer.db.models import CallAttempt, Campaign, NumberContact, Recipient
from dialer.errors import TerminalProviderError
from dialer.policy.attempt_state import Outcome, RecipientStatus
from dialer.policy.campaign_state import CampaignAction
from dialer.policy.frequency import DAY
from dialer.policy.screen import ScreenReason
from dialer.services import campaign_waits, campaigns, tenant_limits
from dialer.services import consent as consent_service
from dialer.services import timeline as timeline_reading
from dialer.services.consent import Consent, ConsentBasis
from tests.flow.harness import EPOCH, Harness, _Row, profile

NUMBER = "+12125551000"


def _limit(h: Harness, **caps: int) -> None:
    with h.session() as session, session.begin():
        tenant_limits.set_limits(session, "tenant", create=True, now=h.clock.now, **caps)  # type: ignore[arg-type]


def _recipient(h: Harness, campaign_id: str) -> Recipient:
    with h.session() as session:
        return session.scalars(
            sa.select(Recipient).where(Recipient.campaign_id == campaign_id)
        ).one()


def _contacts(h: Harness) -> list[NumberContact]:
    with h.session() as session:
        return list(session.scalars(sa.select(NumberContact).order_by(NumberContact.at)))


def _attempts(h: Harness, campaign_id: str) -> list[CallAttempt]:
    with h.session() as session:
        return list(
            session.scalars(
                sa.select(CallAttempt)
                .where(CallAttempt.campaign_id == campaign_id)
                .order_by(CallAttempt.id)
            )
        )


def test_a_number_called_by_one_campaign_waits_in_another_until_the_cap_frees(
    engine: Engine,
) -> None:
    h = Harness(engine, sim=profile(human=0.0, busy=1.0))
    _limit(h, attempts_per_day=1)
    first = h.campaign([NUMBER], max_concurrency=1, retry_policy={"max_attempts": 1})
    second = h.campaign([NUMBER], max_concurrency=1, retry_policy={"max_attempts": 1})
    h.act(first, CampaignAction.START)
    h.run_until_done(first)
    [dialed] = _contacts(h)
    assert (dialed.phone_number, dialed.human_answered_at) == (NUMBER, None)

    h.act(second, CampaignAction.START)
    h.step()
    waiting = _recipient(h, second)
    assert waiting.status is RecipientStatus.PENDING, "deferred, not ended"
    assert waiting.reason == ScreenReason.FREQUENCY_CAP_24H
    assert waiting.next_attempt_at == dialed.at + DAY
    assert _attempts(h, second) == []
    with h.session() as session:
        waits = campaign_waits.waits(session, session.get_one(Campaign, second), h.clock.now)
    assert waits.frequency_cap.count == 1
    assert waits.frequency_cap.reasons == {"frequency-cap-24h": 1}
    assert waits.frequency_cap.next_at == dialed.at + DAY
    assert waits.due == 0

    h.clock.now = dialed.at + DAY
    h.run_until_done(second)
    assert [a.outcome for a in _attempts(h, second)] == [Outcome.BUSY]
    assert len(_contacts(h)) == 2


def test_a_claimed_call_another_campaign_dialed_meanwhile_is_deferred_at_the_dial(
    engine: Engine,
) -> None:
    h = Harness(engine)
    _limit(h, attempts_per_day=1)
    first = h.campaign([NUMBER], max_concurrency=1)
    second = h.campaign([NUMBER], max_concurrency=1)
    for cid in (first, second):
        h.act(cid, CampaignAction.START)
        h.runtime.dispatcher.tick(h.clock.now, campaign_ids=[cid])  # both claimed, none dialed
    [(_, one), (_, other)] = h.queue.dials
    assert len(_contacts(h)) == 0, "a claim not dialed is no contact"

    h.runtime.placer.dial(one)
    turned_away = h.runtime.placer.dial(other)

    assert turned_away.decision is not None
    assert turned_away.decision.reason is ScreenReason.FREQUENCY_CAP_24H
    [contact] = _contacts(h)
    assert contact.attempt_id == one
    waiting = _recipient(h, second)
    assert (waiting.status, waiting.reason) == (
        RecipientStatus.WAITING_RETRY,
        ScreenReason.FREQUENCY_CAP_24H,
    )
    assert waiting.next_attempt_at == contact.at + DAY
    assert waiting.run_attempts == 0, "the attempt turned away does not count for the retries"
    assert h.counts(second) == h.truth(second)


def test_a_claim_that_starts_its_call_in_place_records_it_and_the_next_claim_is_capped(
    engine: Engine,
) -> None:
    h = Harness(engine)
    _limit(h, attempts_per_day=1)
    first = h.campaign([NUMBER], max_concurrency=1)
    second = h.campaign([NUMBER], max_concurrency=1)
    h.act(first, CampaignAction.START)
    assert h.runtime.run_dispatch(first) == 1  # claimed and dialed in this thread
    [contact] = _contacts(h)
    assert contact.attempt_id == _attempts(h, first)[0].id
    h.act(second, CampaignAction.START)
    assert h.runtime.run_dispatch(second) == 0
    waiting = _recipient(h, second)
    assert (waiting.reason, waiting.next_attempt_at) == (
        ScreenReason.FREQUENCY_CAP_24H,
        contact.at + DAY,
    )


def test_a_call_the_provider_refused_does_not_count(engine: Engine) -> None:
    h = Harness(engine)
    _limit(h, attempts_per_day=1)
    cid = h.campaign([NUMBER], max_concurrency=1)
    h.act(cid, CampaignAction.START)
    real = h.simulator.place_call
    refused = {"n": 0}

    def refuse_first(request):  # type: ignore[no-untyped-def]
        refused["n"] += 1
        if refused["n"] == 1:
            raise TerminalProviderError("invalid 'To' number", code="21211", status=400)
        return real(request)

    h.simulator.place_call = refuse_first  # type: ignore[method-assign]
    h.step()
    assert _attempts(h, cid)[0].outcome is Outcome.FAILED
    assert _contacts(h) == []
    h.run_until_done(cid, seconds=5)
    assert [a.outcome for a in _attempts(h, cid)] == [Outcome.FAILED, Outcome.HUMAN]
    [contact] = _contacts(h)
    assert contact.attempt_id == _attempts(h, cid)[1].id


def test_after_a_person_answered_the_number_is_quiet_for_the_tenants_days(
    engine: Engine,
) -> None:
    h = Harness(engine)
    _limit(h, quiet_days_after_answer=3)
    first = h.campaign([NUMBER], max_concurrency=1)
    h.act(first, CampaignAction.START)
    h.run_until_done(first)
    [contact] = _contacts(h)
    assert contact.human_answered_at is not None

    second = h.campaign([NUMBER], max_concurrency=1)
    h.act(second, CampaignAction.START)
    h.step()
    waiting = _recipient(h, second)
    assert waiting.reason == ScreenReason.RECENTLY_ANSWERED
    assert waiting.next_attempt_at == contact.human_answered_at + timedelta(days=3)


def test_a_retry_policy_longer_than_the_cap_is_slowed_never_stuck(engine: Engine) -> None:
    h = Harness(engine, sim=profile(human=0.0, no_answer=1.0))
    _limit(h, attempts_per_day=2, attempts_per_week=7)
    retry = {"max_attempts": 5, "backoff": {"kind": "fixed", "delay": "60s"}, "jitter": 0}
    cid = h.campaign([NUMBER], max_concurrency=1, retry_policy=retry)
    h.act(cid, CampaignAction.START)
    h.run_until_done(cid, max_steps=2_000, seconds=300)

    done = _recipient(h, cid)
    assert (done.status, done.attempt_count) == (RecipientStatus.EXHAUSTED, 5)
    dialed = sorted(c.at for c in _contacts(h))
    assert len(dialed) == 5
    for i, at in enumerate(dialed):
        assert sum(1 for t in dialed[: i + 1] if t > at - DAY) <= 2, "2 a day at most"
    assert dialed[-1] - dialed[0] >= 2 * DAY


def test_a_campaign_may_be_stricter_than_its_tenant(engine: Engine) -> None:
    h = Harness(engine, sim=profile(human=0.0, busy=1.0))
    first = h.campaign([NUMBER], max_concurrency=1, retry_policy={"max_attempts": 1})
    strict = h.campaign([NUMBER], max_concurrency=1, frequency_caps={"attempts_per_week": 1})
    h.act(first, CampaignAction.START)
    h.run_until_done(first)
    h.act(strict, CampaignAction.START)
    h.step()
    [contact] = _contacts(h)
    waiting = _recipient(h, strict)
    assert waiting.reason == ScreenReason.FREQUENCY_CAP_7D
    assert waiting.next_attempt_at == contact.at + timedelta(days=7)


# -- consent -------------------------------------------------------------------------------

CONSENTED = "+12125551001"
LATER = "+12125551002"


def test_a_campaign_that_requires_consent_calls_only_numbers_with_a_record(
    engine: Engine,
) -> None:
    h = Harness(engine)
    cid = h.campaign([NUMBER, CONSENTED, LATER], max_concurrency=3, require_consent=True)
    with h.session() as session, session.begin():
        tenant_id = session.get_one(Campaign, cid).tenant_id
        old = consent_service.record(
            session, tenant_id, CONSENTED,
            Consent(ConsentBasis.EXPRESS, EPOCH - timedelta(days=30), "web-form:old"),
            now=h.clock.now,
        )  # fmt: skip
        new = consent_service.record(
            session, tenant_id, CONSENTED,
            Consent(ConsentBasis.EXPRESS_WRITTEN, EPOCH - timedelta(days=1), "web-form:signup"),
            now=h.clock.now,
        )  # fmt: skip
        consent_service.record(
            session, tenant_id, LATER,
            Consent(ConsentBasis.EXPRESS, EPOCH + timedelta(days=1)),  # not given yet
            now=h.clock.now,
        )  # fmt: skip
    h.act(cid, CampaignAction.START)
    h.run_until_done(cid)

    with h.session() as session:
        ended = {
            r.phone_number: (r.status, r.reason)
            for r in session.scalars(sa.select(Recipient).where(Recipient.campaign_id == cid))
        }
        used = consent_service.consent_used(session, tenant_id, CONSENTED, h.clock.now)
        none = consent_service.consent_used(session, tenant_id, NUMBER, h.clock.now)
    assert ended == {
        NUMBER: (RecipientStatus.SKIPPED, ScreenReason.NO_CONSENT),
        CONSENTED: (RecipientStatus.DONE, None),
        LATER: (RecipientStatus.SKIPPED, ScreenReason.NO_CONSENT),
    }
    assert used is not None
    assert used.id == new.id != old.id
    assert none is None
    assert [a.to_number for a in _attempts(h, cid)] == [CONSENTED]
    # Each recipient's timeline says what was decided on which consent: the dial names the
    # record it relied on (the newest given before it), the others why they were skipped.
    with h.session() as session:
        decisions = {
            r.phone_number: [(d.kind, d.reason, d.facts) for d in d_list]
            for r in session.scalars(sa.select(Recipient).where(Recipient.campaign_id == cid))
            for d_list in [timeline_reading.of_recipients(session, [r.id])[r.id]]
        }
    dial = next(facts for kind, _, facts in decisions[CONSENTED] if kind == "dialed")
    assert dial["consent"]["id"] == new.id
    assert dial["consent"]["basis"] == "express_written"
    assert dial["consent"]["source"] == "web-form:signup"
    for number in (NUMBER, LATER):
        assert [(kind, reason) for kind, reason, _ in decisions[number]] == [
            ("skipped", ScreenReason.NO_CONSENT.value)
        ]


def test_consent_given_with_recipients_is_recorded_for_the_tenant(engine: Engine) -> None:
    h = Harness(engine)
    given = Consent(ConsentBasis.EXISTING_RELATIONSHIP, EPOCH - DAY, "crm", "ticket 42")
    cid = h.campaign([NUMBER], max_concurrency=1, require_consent=True)
    with h.session() as session, session.begin():
        tenant_id = session.get_one(Campaign, cid).tenant_id
        campaigns.update(
            session,
            tenant_id,
            cid,
            {},
            now=h.clock.now,
            recipients=[_Row(CONSENTED, consent=given)],
        )
    with h.session() as session:
        [row] = consent_service.page(session, tenant_id, CONSENTED, after_id=None, limit=5)
        assert consent_service.consent_used(session, tenant_id, NUMBER, h.clock.now) is None
    assert (row.basis, row.captured_at, row.source, row.evidence) == (
        "existing_relationship",
        EPOCH - DAY,
        "crm",
        "ticket 42",
    )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_number_lock_holds_a_second_dialer_until_the_first_commits(engine: Engine) -> None:
    """Two campaigns dialing one number at once: the second's check waits for the first's
    record (PostgreSQL; SQLite serialises writers on its own)."""
    sessions = sa.orm.sessionmaker(engine)
    with sessions() as first, first.begin():
        contacts.lock_numbers(first, "tenant-a", [NUMBER])
        with sessions() as second, second.begin():
            key = contacts._key("tenant-a", NUMBER)
            taken = second.scalar(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key})
            other = second.scalar(
                sa.text("SELECT pg_try_advisory_xact_lock(:k)"),
                {"k": contacts._key("tenant-b", NUMBER)},
            )
    assert taken is False, "held by the first transaction"
    assert other is True, "another tenant's number is another lock"
    with sessions() as third, third.begin():
        assert third.scalar(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key})


def test_consent_required_after_the_claim_is_checked_again_at_the_dial(engine: Engine) -> None:
    h = Harness(engine)
    cid = h.campaign([NUMBER], max_concurrency=1)
    h.act(cid, CampaignAction.START)
    h.runtime.dispatcher.tick(h.clock.now, campaign_ids=[cid])
    [(_, attempt_id)] = h.queue.dials
    with h.session() as session, session.begin():
        campaign = session.get_one(Campaign, cid)
        campaigns.update(
            session, campaign.tenant_id, cid, {"require_consent": True}, now=h.clock.now
        )

    dialed = h.runtime.placer.dial(attempt_id)

    assert dialed.decision is not None
    assert dialed.decision.reason is ScreenReason.NO_CONSENT
    done = _recipient(h, cid)
    assert (done.status, done.reason) == (RecipientStatus.SKIPPED, ScreenReason.NO_CONSENT)
    assert h.simulator.find_calls(NUMBER, "+14155550100", EPOCH) == []
    assert h.counts(cid) == h.truth(cid)
