"""Constraints, types and indexes behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from dialer.db.models import CallAttempt, Campaign, Recipient, Suppression
from dialer.policy.attempt_state import AttemptStatus, Outcome, RecipientStatus
from dialer.policy.campaign_state import CampaignStatus
from tests.db import factories


def test_a_second_row_for_the_same_attempt_is_impossible(engine: Engine) -> None:
    with Session(engine) as session:
        owner = factories.tenant(session)
        camp = factories.campaign(session, owner)
        run = factories.run(session, camp)
        person = factories.recipient(session, camp, "+14155552671")
        session.add(
            CallAttempt(
                recipient_id=person.id,
                campaign_id=camp.id,
                run_id=run.id,
                attempt_number=1,
                to_number=person.phone_number,
            )
        )
        session.commit()
        session.add(
            CallAttempt(
                recipient_id=person.id,
                campaign_id=camp.id,
                run_id=run.id,
                attempt_number=1,
                to_number=person.phone_number,
            )
        )
        with pytest.raises(IntegrityError):
            session.commit()


def test_a_number_appears_once_per_campaign(engine: Engine) -> None:
    with Session(engine) as session:
        owner = factories.tenant(session)
        first = factories.campaign(session, owner)
        second = factories.campaign(session, owner, name="Other")
        factories.recipient(session, first, "+14155552671")
        factories.recipient(session, second, "+14155552671")  # another campaign: fine
        session.commit()
        session.add(Recipient(campaign_id=first.id, phone_number="+14155552671"))
        with pytest.raises(IntegrityError):
            session.commit()


def test_suppression_is_unique_per_tenant(engine: Engine) -> None:
    with Session(engine) as session:
        owner = factories.tenant(session)
        session.add(Suppression(tenant_id=owner.id, phone_number="+14155552671"))
        session.commit()
        session.add(Suppression(tenant_id=owner.id, phone_number="+14155552671"))
        with pytest.raises(IntegrityError):
            session.commit()


@pytest.mark.parametrize(
    "fields",
    [
        {"max_concurrency": 0},
        {"max_concurrency": 201},
        {"machine_detection_timeout_seconds": 2},
        {"machine_detection_timeout_seconds": 61},
        {"short_term_summaries_limit": -1},
        {
            "schedule_start_time": datetime(2026, 1, 2, tzinfo=UTC),
            "schedule_end_time": datetime(2026, 1, 1, tzinfo=UTC),
        },
    ],
)
def test_campaign_checks_hold_in_the_database(engine: Engine, fields: dict[str, object]) -> None:
    with Session(engine) as session:
        owner = factories.tenant(session)
        session.commit()
        with pytest.raises(IntegrityError):
            factories.campaign(session, owner, **fields)


def test_an_outcome_exactly_when_ended(engine: Engine) -> None:
    with Session(engine) as session:
        owner = factories.tenant(session)
        camp = factories.campaign(session, owner)
        run = factories.run(session, camp)
        person = factories.recipient(session, camp, "+14155552671")
        session.commit()
        session.add(
            CallAttempt(
                recipient_id=person.id,
                campaign_id=camp.id,
                run_id=run.id,
                attempt_number=1,
                to_number=person.phone_number,
                status=AttemptStatus.RINGING,
                outcome=Outcome.BUSY,
            )
        )
        with pytest.raises(IntegrityError):
            session.commit()


def test_enum_columns_refuse_unknown_values(engine: Engine) -> None:
    with Session(engine) as session:
        owner = factories.tenant(session)
        camp = factories.campaign(session, owner)
        session.commit()
        statement = sa.update(Campaign).where(Campaign.id == camp.id).values(status="exploded")
        with pytest.raises(StatementError):
            session.execute(statement)  # refused before it reaches the database
        session.rollback()
        with pytest.raises(IntegrityError):
            session.execute(sa.text("UPDATE campaigns SET status = 'exploded'"))  # CHECK


def test_datetimes_come_back_aware_and_in_utc(engine: Engine) -> None:
    paris = timezone(timedelta(hours=1))
    start = datetime(2026, 6, 1, 9, 30, tzinfo=paris)
    with Session(engine) as session:
        owner = factories.tenant(session)
        camp = factories.campaign(session, owner, schedule_start_time=start)
        session.commit()
        campaign_id = camp.id
    with Session(engine) as session:
        loaded = session.get_one(Campaign, campaign_id)
        assert loaded.schedule_start_time == start
        assert loaded.schedule_start_time is not None
        assert loaded.schedule_start_time.utcoffset() == timedelta(0)
        assert loaded.status is CampaignStatus.DRAFT
        assert loaded.created_at.tzinfo is not None


def test_naive_datetimes_are_refused(engine: Engine) -> None:
    with Session(engine) as session:
        owner = factories.tenant(session)
        with pytest.raises(StatementError, match="naive"):
            factories.campaign(session, owner, schedule_start_time=datetime(2026, 1, 1))  # noqa: DTZ001


def test_json_documents_round_trip(engine: Engine) -> None:
    metadata = {"first_name": "Ada", "tags": ["vip"], "balance": 12.5, "nested": {"a": None}}
    with Session(engine) as session:
        owner = factories.tenant(session)
        camp = factories.campaign(session, owner)
        person = factories.recipient(
            session, camp, "+14155552671", metadata_=metadata, assistant_overrides={"voice": "x"}
        )
        session.commit()
        person_id = person.id
    with Session(engine) as session:
        loaded = session.get_one(Recipient, person_id)
        assert loaded.metadata_ == metadata
        assert loaded.assistant_overrides == {"voice": "x"}
        assert loaded.status is RecipientStatus.PENDING


def _due_query(campaign_id: str, now: datetime) -> sa.Select[tuple[int]]:
    return (
        sa.select(Recipient.id)
        .where(
            Recipient.campaign_id == campaign_id,
            Recipient.status.in_([RecipientStatus.PENDING, RecipientStatus.WAITING_RETRY]),
            Recipient.next_attempt_at <= now,
        )
        .order_by(Recipient.next_attempt_at, Recipient.id)
        .limit(50)
    )


def test_due_recipients_come_from_an_index_range_scan(engine: Engine) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with Session(engine) as session:
        owner = factories.tenant(session)
        camp = factories.campaign(session, owner)
        session.execute(
            sa.insert(Recipient),
            [
                {
                    "campaign_id": camp.id,
                    "phone_number": f"+1415555{i:04d}",
                    "status": RecipientStatus.DONE if i % 3 else RecipientStatus.PENDING,
                    "next_attempt_at": now - timedelta(minutes=i),
                    "metadata_": {},
                    "assistant_overrides": {},
                }
                for i in range(3000)
            ],
        )
        session.commit()
        due = session.scalars(_due_query(camp.id, now)).all()
        assert len(due) == 50
        query = _due_query(camp.id, now)
        compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
        if engine.dialect.name == "postgresql":
            session.execute(sa.text("ANALYZE recipients"))
            plan = "\n".join(session.scalars(sa.text(f"EXPLAIN {compiled}")))
            assert "ix_recipients_due" in plan, plan
            assert "Seq Scan" not in plan, plan
        else:
            rows = session.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}")).all()
            plan = "\n".join(str(row[-1]) for row in rows)
            # SEARCH is a range lookup; SCAN would read the whole table or index.
            assert "SEARCH recipients USING INDEX ix_recipients_due" in plan, plan
