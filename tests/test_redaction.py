"""No phone number or SQL parameter reaches a log line."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dialer import redaction

NUMBER = "+14155550123"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (NUMBER, "+*******0123"),
        (f"To={NUMBER}&From=+442071838750", "To=+*******0123&From=+********8750"),
        ("To=%2B14155550123", "To=%2B*******0123"),
        ("attempt 123456789012 of campaign 42", "attempt 123456789012 of campaign 42"),
        ("+1234", "+1234"),  # too short to be a number
    ],
)
def test_phone_numbers_are_masked_to_their_last_four_digits(text: str, masked: str) -> None:
    assert redaction.mask_phone_numbers(text) == masked


def test_every_log_record_is_masked_once_installed(caplog: pytest.LogCaptureFixture) -> None:
    redaction.install()
    log = logging.getLogger("dialer.test")
    with caplog.at_level(logging.INFO):
        log.info("calling %s from %s", NUMBER, "+14155550100")
        log.info("refused: %s", ValueError(f"The 'To' number {NUMBER} is not valid"))
        log.info("mapping %(to)s", {"to": NUMBER})
        log.info(f"inline {NUMBER}")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "5550123" not in text
    assert "5550100" not in text
    assert text.count("0123") == 4


def test_the_twilio_request_log_stays_at_warning() -> None:
    logger = logging.getLogger("twilio.http_client")
    logger.setLevel(logging.DEBUG)
    redaction.install(logging.DEBUG)
    assert logger.level == logging.WARNING
    redaction.install(logging.ERROR)
    assert logger.level == logging.ERROR


def test_database_errors_do_not_carry_their_parameters(engine: Engine) -> None:
    with pytest.raises(sa.exc.StatementError) as failed, engine.connect() as conn:
        conn.execute(sa.text("SELECT :number, :other"), {"number": NUMBER, "other": object()})
    assert NUMBER not in str(failed.value)
