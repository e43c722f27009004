"""Log lines: JSON (one object per line) or text, phone numbers masked, with the context ids.

``DIALER_LOG_FORMAT`` chooses: ``json`` for log collectors, ``text`` for people; unset, it is
``text`` when stderr is a terminal and ``json`` otherwise. A JSON line holds ``time`` (ISO 8601,
UTC), ``level``, ``logger``, ``message``, ``exception`` (the traceback, when there is one), the
context ids bound while the line was logged (:mod:`~dialer.observability.context`), and any
``extra`` fields the call passed. The JSON is python-json-logger's.

Every process configures its logging once, with :func:`configure`; uvicorn gets the same
handler through :func:`uvicorn_log_config` (its processes apply it themselves, including those
``--workers`` starts), and Celery through its ``setup_logging`` signal (see
:mod:`workers.celery_app`), so the API's access and error lines and the workers' lines come out
like the dialer's own.

Phone numbers are masked twice: where records are made (:mod:`dialer.redaction`, for every
handler of the process), and here, in what the formatters write, message, arguments, extra
fields and exception text alike (a process whose record factory is not installed, such as a
uvicorn worker process, is still masked).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from dialer import redaction
from dialer.observability.context import FIELDS, current

LogFormat = Literal["json", "text"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(context_ids)s: %(message)s"
#: Record attributes never written as fields: the standard ones (those the line uses are
#: written under their own names), uvicorn's colour copy of its message, ours.
_NOT_FIELDS = (*RESERVED_ATTRS, "color_message", "context_ids")
#: Marks the handler :func:`configure` installed, so configuring again replaces it.
_OURS = "_dialer_handler"


def resolve(log_format: str | None, stream: TextIO | None = None) -> LogFormat:
    """The format to use: the one asked for, else ``text`` on a terminal and ``json`` off it."""
    if log_format == "json":
        return "json"
    if log_format == "text":
        return "text"
    if log_format is not None:
        raise ValueError(f"log format must be json or text, not {log_format!r}")
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


class ContextFilter(logging.Filter):
    """Puts the context ids bound in the logging thread on each record (an ``extra`` of the
    same name wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current().items():
            if name not in record.__dict__:
                record.__dict__[name] = value
        return True


class JsonLines(JsonFormatter):
    """One JSON object per record, masked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
            reserved_attrs=_NOT_FIELDS,
            json_ensure_ascii=False,
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = _iso_utc(record.created)
        super().add_fields(log_data, record, message_dict)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        ordered = {k: log_data.pop(k) for k in ("time", "level", "logger", "message")}
        ordered.update({k: log_data.pop(k) for k in FIELDS if k in log_data})
        ordered.update(log_data)
        return {str(k): _masked(v) for k, v in ordered.items()}


class TextLines(logging.Formatter):
    """``time LEVEL logger [ids]: message``, masked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{k}={record.__dict__[k]}" for k in FIELDS if k in record.__dict__)
        record.context_ids = f" [{ids}]" if ids else ""
        return redaction.mask_phone_numbers(super().format(record))


def make_formatter(log_format: LogFormat) -> logging.Formatter:
    """The formatter of ``log_format`` (also the factory ``logging.config`` dictionaries name)."""
    return JsonLines() if log_format == "json" else TextLines()


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record comes (a test runner swaps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure(level: str, log_format: str | None) -> LogFormat:
    """Log at ``level`` and above to stderr in ``log_format`` (see :func:`resolve`), phone
    numbers masked; replaces what an earlier call installed and leaves other handlers be.
    Returns the format chosen."""
    chosen = resolve(log_format)
    handler = StderrHandler()
    handler.setFormatter(make_formatter(chosen))
    handler.addFilter(ContextFilter())
    setattr(handler, _OURS, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # JSON lines only: Python's warnings become records (logger ``py.warnings``) too.
    logging.captureWarnings(chosen == "json")
    redaction.install(logging.getLevelNamesMapping()[level])
    return chosen


def uvicorn_log_config(level: str, log_format: str | None) -> dict[str, Any]:
    """uvicorn's ``log_config``: its error and access lines, and the root logger of each of
    its processes, through the same formatter as the rest of the dialer's lines."""
    chosen = resolve(log_format)
    handler: Mapping[str, Any] = {
        "()": f"{__name__}.StderrHandler",
        "formatter": "dialer",
        "filters": ["context"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": f"{__name__}.ContextFilter"}},
        "formatters": {"dialer": {"()": f"{__name__}.make_formatter", "log_format": chosen}},
        "handlers": {"dialer": dict(handler)},
        "loggers": {
            "uvicorn": {"handlers": ["dialer"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["dialer"], "level": level, "propagate": False},
        },
        "root": {"handlers": ["dialer"], "level": level},
    }


def _iso_utc(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


def _masked(value: Any) -> Any:
    """``value`` as JSON can hold it, every string in it with phone numbers masked."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redaction.mask_phone_numbers(value)
    if isinstance(value, Mapping):
        return {str(k): _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked(v) for v in value]
    return redaction.mask_phone_numbers(str(value))
