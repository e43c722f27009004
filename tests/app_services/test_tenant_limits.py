"""A tenant's limits: parsed and validated as values, set and described on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from dialer.db.engine import session_factory
from dialer.db.models import ApiKey, Tenant
from dialer.errors import NotFound, ValidationError
from dialer.policy.campaign_state import CampaignStatus
from dialer.services import tenant_limits
from dialer.services.tenant_limits import KEEP, parse_max_concurrency, parse_max_cps
from tests.db import factories

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "value"), [("1", 1), ("20", 20), ("none", None), ("None", None), (" 7 ", 7)]
)
def test_max_concurrency_values(text: str, value: int | None) -> None:
    assert parse_max_concurrency(text) == value


@pytest.mark.parametrize("text", ["0", "-3", "1.5", "abc", "", "2147483648"])
def test_bad_max_concurrency_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_max_concurrency(text)
    assert caught.value.field == "max_concurrency"


@pytest.mark.parametrize(("text", "value"), [("2", 2.0), ("0.5", 0.5), ("none", None)])
def test_max_cps_values(text: str, value: float | None) -> None:
    assert parse_max_cps(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "abc", "", "10001"])
def test_bad_max_cps_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_max_cps(text)
    assert caught.value.field == "max_cps"


def test_limits_are_set_kept_and_cleared(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        factories.tenant(session, "acme")
    with sessions() as session, session.begin():
        after, created = tenant_limits.set_limits(
            session, "acme", max_concurrency=20, max_cps=2.5, now=NOW
        )
    assert (after.max_concurrency, after.max_cps, created) == (20, 2.5, False)
    with sessions() as session, session.begin():
        after, _ = tenant_limits.set_limits(session, "acme", max_cps=None, now=NOW)
    assert (after.max_concurrency, after.max_cps) == (20, None)  # concurrency kept
    with sessions() as session:
        row = session.query(Tenant).filter_by(user_id="acme").one()
        assert (row.max_concurrency, row.max_cps) == (20, None)


def test_an_unknown_tenant_is_created_only_when_asked(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session, session.begin(), pytest.raises(NotFound):
        tenant_limits.set_limits(session, "new", max_cps=1.0, now=NOW)
    with sessions() as session, session.begin():
        after, created = tenant_limits.set_limits(
            session, "new", max_concurrency=KEEP, max_cps=1.0, create=True, now=NOW
        )
    assert created
    assert (after.user_id, after.max_concurrency, after.max_cps) == ("new", None, 1.0)


def test_describe_counts_keys_and_campaigns_by_status(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        acme = factories.tenant(session, "acme")
        other = factories.tenant(session, "other")
        acme.max_concurrency = 5
        for status in (CampaignStatus.RUNNING, CampaignStatus.RUNNING, CampaignStatus.PAUSED):
            factories.campaign(session, acme, status=status)
        factories.campaign(session, other, status=CampaignStatus.RUNNING)
        for i, revoked in enumerate([None, None, NOW]):
            session.add(
                ApiKey(tenant_id=acme.id, key_hash=f"{i:064d}", prefix="dk_", revoked_at=revoked)
            )
    with sessions() as session:
        report = tenant_limits.describe(session, "acme")
        with pytest.raises(NotFound):
            tenant_limits.describe(session, "nobody")
    assert report.limits.max_concurrency == 5
    assert report.limits.max_cps is None
    assert (report.active_keys, report.revoked_keys) == (2, 1)
    assert report.campaigns == {"paused": 1, "running": 2}
    assert report.as_dict()["api_keys"] == {"active": 2, "revoked": 1}
