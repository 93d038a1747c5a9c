"""Log lines of the listener: one event per line, plain ``key=value`` text or JSON.

Plain: ``2026-11-22T06:55:01.123Z INFO stored calling_ae=TPS kind=RTPLAN uid=1.2.3 path=...``
(greppable: the event name is the third field, values with spaces are quoted).
JSON (``--log-json``): ``{"time": ..., "level": ..., "event": ..., "calling_ae": ..., ...}``.
The library only logs through :mod:`logging`; :func:`configure` is for the command line.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_FIELDS = "rtcheck_fields"
_EVENT = "rtcheck_event"


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log ``event`` with ``fields`` (rendered ``key=value`` in plain text, as keys in JSON)."""
    if not logger.isEnabledFor(level):
        return
    text = " ".join([event, *(f"{k}={_plain(v)}" for k, v in fields.items())])
    logger.log(level, "%s", text, extra={_EVENT: event, _FIELDS: fields})


def _plain(value: Any) -> str:
    text = "" if value is None else str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class PlainFormatter(logging.Formatter):
    """``<UTC time> <LEVEL> <message>``, one line (a traceback, if any, follows on its own lines)."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, event (``message`` for free-text records) and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {"time": _timestamp(record), "level": record.levelname}
        event = getattr(record, _EVENT, None)
        if event:
            document["event"] = event
            document.update({k: v if isinstance(v, (int, float, bool)) or v is None else str(v)
                             for k, v in getattr(record, _FIELDS, {}).items()})
        else:
            document["event"] = "message"
            document["logger"] = record.name
            document["message"] = record.getMessage()
        if record.exc_info:
            document["traceback"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)


def configure(*, as_json: bool, level: int = logging.INFO) -> None:
    """Send rtcheck's (and pynetdicom's warnings) log records to stderr, plain or JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else PlainFormatter())
    for name, logger_level in (("rtcheck", level), ("pynetdicom", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logger_level)
        logger.propagate = False
