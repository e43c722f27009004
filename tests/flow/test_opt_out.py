"""Opting out during a call (``POST /call/{id}/opt_out``) and ``POST /suppression``: the number
is suppressed across the tenant's campaigns at once, its queued attempts canceled, counts
exact, and no call to it starts after the opt-out commits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from dialer.api.app import create_app
from dialer.calls import counters
from dialer.calls.results import DialResult
from dialer.db.models import CallAttempt, Recipient, Suppression
from dialer.policy.attempt_state import AttemptStatus, Outcome, RecipientStatus
from dialer.policy.campaign_state import CampaignAction
from dialer.settings import Settings
from tests.api.conftest import headers_for
from tests.flow.harness import Harness, numbers
from tests.flow.test_ingestion import SilentProvider

X, Y = numbers(2)


@dataclass
class World:
    h: Harness
    client: TestClient
    auth: dict[str, str]
    calling: str  # X is on a call here
    queued: str  # X has a queued attempt here (its dial task not run)
    pending: str  # X and Y pending here
    theirs: str  # another tenant's campaign calling X
    call_id: int
    queued_attempt: int


@pytest.fixture
def w(engine: Engine) -> Iterator[World]:
    provider = SilentProvider()
    h = Harness(engine, provider=provider)
    settings = Settings(database_url=str(engine.url))
    app = create_app(settings, engine=engine, clock=h.clock, runtime_factory=lambda: h.runtime)
    calling = h.campaign([X], max_concurrency=1)
    h.act(calling, CampaignAction.START)
    h.step()
    queued = h.campaign([X], max_concurrency=1)
    h.act(queued, CampaignAction.START)
    h.runtime.dispatcher.tick(h.clock.now, campaign_ids=[queued])
    [(_, queued_attempt)] = h.queue.dials
    pending = h.campaign([X, Y])
    theirs = h.campaign([X], user="other")
    with h.session() as session:
        call_id = session.scalars(
            sa.select(CallAttempt.id).where(CallAttempt.campaign_id == calling)
        ).one()
    with TestClient(app, raise_server_exceptions=False) as client:
        yield World(
            h,
            client,
            headers_for(engine, "tenant"),
            calling,
            queued,
            pending,
            theirs,
            call_id,
            queued_attempt,
        )


def _recipient(w: World, campaign_id: str, number: str) -> Recipient:
    with w.h.session() as session:
        return session.scalars(
            sa.select(Recipient).where(
                Recipient.campaign_id == campaign_id, Recipient.phone_number == number
            )
        ).one()


def _reconciled(w: World) -> None:
    for cid in (w.calling, w.queued, w.pending, w.theirs):
        assert w.h.counts(cid) == w.h.truth(cid), cid


def test_the_assistant_opts_the_number_out_of_every_campaign_of_the_tenant(w: World) -> None:
    answer = w.client.post(
        f"/call/{w.call_id}/opt_out", json={"reason": "asked on the call"}, headers=w.auth
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["phone_number"] == X
    assert body["reason"] == "asked on the call"
    assert body["source"] == f"call-api:{w.call_id}"
    assert (body["recipients_suppressed"], body["attempts_canceled"]) == (2, 1)
    for cid in (w.queued, w.pending):
        ended = _recipient(w, cid, X)
        assert (ended.status, ended.reason) == (RecipientStatus.SUPPRESSED, "opted-out")
    assert _recipient(w, w.calling, X).status is RecipientStatus.IN_FLIGHT, "left to end"
    assert _recipient(w, w.pending, Y).status is RecipientStatus.PENDING
    assert _recipient(w, w.theirs, X).status is RecipientStatus.PENDING, "another tenant's"
    with w.h.session() as session:
        canceled = session.get_one(CallAttempt, w.queued_attempt)
        assert (canceled.status, canceled.outcome) == (AttemptStatus.ENDED, Outcome.CANCELED)
    _reconciled(w)
    counts = w.client.get(f"/campaign/{w.queued}", headers=w.auth).json()["counts"]
    assert counts["suppressed"] == 1
    assert counts["queued"] == 0

    # The queued attempt's dial task still comes: it dials nothing.
    assert w.h.runtime.run_dial(w.queued_attempt).result is DialResult.NOT_QUEUED
    assert w.h.simulator.n == 1, "only the call in flight was ever placed"


def test_a_second_opt_out_answers_the_same_entry_and_changes_nothing(w: World) -> None:
    first = w.client.post(f"/call/{w.call_id}/opt_out", headers=w.auth)
    again = w.client.post(f"/call/{w.call_id}/opt_out", json={"reason": "again"}, headers=w.auth)

    assert first.status_code == again.status_code == 200
    assert again.json() == {**first.json(), "recipients_suppressed": 0, "attempts_canceled": 0}
    assert first.json()["reason"] is None
    with w.h.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 1
    _reconciled(w)


def test_another_tenants_call_is_not_found_and_nothing_changes(w: World, engine: Engine) -> None:
    answer = w.client.post(f"/call/{w.call_id}/opt_out", headers=headers_for(engine, "other"))

    assert answer.status_code == 404
    assert _recipient(w, w.pending, X).status is RecipientStatus.PENDING
    with w.h.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 0


def test_post_suppression_ends_the_numbers_recipients_the_same_way(w: World) -> None:
    answer = w.client.post(
        "/suppression", json={"phone_number": X, "reason": "letter"}, headers=w.auth
    )

    assert answer.status_code == 201, answer.text
    assert answer.json()["source"] == "api"
    for cid in (w.queued, w.pending):
        assert _recipient(w, cid, X).status is RecipientStatus.SUPPRESSED
    assert _recipient(w, w.theirs, X).status is RecipientStatus.PENDING
    _reconciled(w)


def test_a_recipient_waiting_to_retry_is_suppressed(w: World) -> None:
    with w.h.session() as session, session.begin():
        session.execute(
            sa.update(Recipient)
            .where(Recipient.campaign_id == w.pending, Recipient.phone_number == X)
            .values(status=RecipientStatus.WAITING_RETRY)
        )
        counters.recount(session, w.pending)
    w.client.post(f"/call/{w.call_id}/opt_out", headers=w.auth)

    assert _recipient(w, w.pending, X).status is RecipientStatus.SUPPRESSED
    _reconciled(w)
