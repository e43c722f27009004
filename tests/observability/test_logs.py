"""Log lines: one JSON object per line (or text), context ids on them, phone numbers masked."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from dialer.observability import context
from dialer.observability.logs import (
    ContextFilter,
    JsonLines,
    configure,
    make_formatter,
    resolve,
    uvicorn_log_config,
)

NUMBER = "+14155550123"
MASKED = "+*******0123"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing JSON lines to a buffer, as the dialer's handler does."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(make_formatter("json"))
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("dialer.test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_each_record_is_one_json_object_with_time_level_logger_and_message(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info("first %s", "line")
    logger.warning('quotes " and \\ and a\nnewline and unicode é')
    first, second = lines(stream)
    assert list(first)[:4] == ["time", "level", "logger", "message"]
    assert first["level"] == "INFO"
    assert first["logger"] == "dialer.test.logs"
    assert first["message"] == "first line"
    moment = datetime.fromisoformat(str(first["time"]))
    assert moment.utcoffset() == timedelta(0)
    assert second["level"] == "WARNING"
    assert second["message"] == 'quotes " and \\ and a\nnewline and unicode é'


def test_phone_numbers_are_masked_in_message_args_extras_and_exception(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info(f"inline {NUMBER}")
    logger.info("args %s", NUMBER)
    logger.info("extras", extra={"to": NUMBER, "nested": {"numbers": [NUMBER, 7]}, "n": 3})
    try:
        raise ValueError(f"The 'To' number {NUMBER} is not valid")
    except ValueError:
        logger.exception("dial failed for %s", NUMBER)
    text = stream.getvalue()
    assert NUMBER not in text
    inline, args, extras, failed = lines(stream)
    assert inline["message"] == f"inline {MASKED}"
    assert args["message"] == f"args {MASKED}"
    assert extras["to"] == MASKED
    assert extras["nested"] == {"numbers": [MASKED, 7]}
    assert extras["n"] == 3
    assert failed["message"] == f"dial failed for {MASKED}"
    exception = str(failed["exception"])
    assert exception.startswith("Traceback")
    assert f"ValueError: The 'To' number {MASKED} is not valid" in exception


def test_the_bound_context_ids_are_on_every_line_logged_meanwhile(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    with context.bound(tenant_id="t1", campaign_id="c1", attempt_id=42):
        logger.info("dialing")
        context.add(recipient_id=7, call_sid="CA123", run_id="r1")
        logger.info("placed")
    logger.info("after")
    dialing, placed, after = lines(stream)
    assert dialing["tenant_id"] == "t1"
    assert dialing["campaign_id"] == "c1"
    assert dialing["attempt_id"] == 42
    assert "recipient_id" not in dialing
    assert {k: placed[k] for k in context.FIELDS} == {
        "tenant_id": "t1",
        "campaign_id": "c1",
        "run_id": "r1",
        "recipient_id": 7,
        "attempt_id": 42,
        "call_sid": "CA123",
    }
    assert not set(context.FIELDS) & set(after)


def test_text_lines_carry_the_ids_and_are_masked() -> None:
    record = logging.LogRecord("dialer.x", logging.WARNING, __file__, 1, "to %s", (NUMBER,), None)
    with context.bound(campaign_id="c9", attempt_id=5):
        ContextFilter().filter(record)
    line = make_formatter("text").format(record)
    assert " WARNING dialer.x [campaign_id=c9 attempt_id=5]: to " + MASKED in line
    assert NUMBER not in line


def test_the_format_follows_the_terminal_unless_set() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert resolve(None, Tty()) == "text"
    assert resolve(None, io.StringIO()) == "json"
    assert resolve("json", Tty()) == "json"
    assert resolve("text", io.StringIO()) == "text"
    with pytest.raises(ValueError, match="json or text"):
        resolve("xml")


def test_configure_installs_one_handler_and_replaces_it_when_called_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    try:
        configure("INFO", "json")
        configure("INFO", "json")
        ours = [h for h in root.handlers if h not in before]
        assert len(ours) == 1
        with context.bound(attempt_id=9):
            logging.getLogger("dialer.test.configure").info("to %s", NUMBER)
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert json.loads(line)["message"] == f"to {MASKED}"
        assert json.loads(line)["attempt_id"] == 9
    finally:
        for handler in [h for h in root.handlers if h not in before]:
            root.removeHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(False)


def test_uvicorn_is_given_the_same_formatter_and_context() -> None:
    config = uvicorn_log_config("INFO", "json")
    assert config["root"]["handlers"] == ["dialer"]
    loggers = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.access")]
    before = [(logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    try:
        # Without its root part: this process's root logger is the test runner's.
        logging.config.dictConfig({k: v for k, v in config.items() if k != "root"})
        for logger in loggers:
            (handler,) = logger.handlers
            assert isinstance(handler.formatter, JsonLines)
            assert any(isinstance(f, ContextFilter) for f in handler.filters)
    finally:
        for logger, (handlers, level, propagate) in zip(loggers, before, strict=True):
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
