"""Personal data kept out of logs: phone numbers masked to their last four digits.

Masking happens where a log record is made (a record factory), so every logger of the
process is covered, whatever handlers and formats a server installs later (Celery replaces
the root logger's handlers; uvicorn brings its own). What the record factory cannot see is
covered where it is made: SQL parameters are never put in messages (the engine hides them),
and the Twilio SDK's request log, which prints To and From, is kept at WARNING.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

#: A number as E.164 writes it (``+`` and 7 to 15 digits), also %-encoded in a URL (``%2B``).
#: Bare digit runs are left alone: ids and counts are digits too.
_PHONE = re.compile(r"(\+|%2[Bb])(\d{3,11})(\d{4})(?!\d)")
#: Loggers that print request URLs and forms with phone numbers at INFO and below.
CHATTY_LOGGERS = ("twilio.http_client",)

_installed = False


def mask_phone_numbers(text: str) -> str:
    """``text`` with every phone number reduced to its last four digits:
    ``+14155550123`` -> ``+*******0123``."""
    return _PHONE.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_phone_numbers(value)
    if isinstance(value, BaseException):  # a provider's error message may quote the number
        return mask_phone_numbers(str(value))
    return value


def _mask_record(record: logging.LogRecord) -> logging.LogRecord:
    if isinstance(record.msg, str):
        record.msg = mask_phone_numbers(record.msg)
    args = record.args
    if isinstance(args, tuple):
        record.args = tuple(_masked(a) for a in args)
    elif isinstance(args, Mapping):
        record.args = {k: _masked(v) for k, v in args.items()}
    return record


def install(level: int = logging.INFO) -> None:
    """Mask phone numbers in every log record this process makes from now on, and keep the
    request logs that print numbers at WARNING or quieter (``level`` if higher).
    Idempotent."""
    global _installed
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, level))
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _mask_record(make_record(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    _installed = True
