"""Log lines of the listener: one event per line, plain ``key=value`` text or JSON.

Plain: ``2026-11-22T06:55:01.123Z INFO stored calling_ae=TPS kind=RTPLAN uid=1.2.3 path=...``
(greppable: the event name is the third field).  A value is written bare when
it is printable and holds no space, ``"``, ``=`` or ``\\``; otherwise it is
quoted and escaped (``\\n``, ``\\"``, ``\\\\``, ``\\xNN``/``\\uNNNN`` for every other
character that is not printable), so whatever a data set holds, one event is
one line and no value can forge another field or event.
JSON (``--log-json``): ``{"time": ..., "level": ..., "event": ..., "calling_ae": ..., ...}``,
with line and paragraph separators escaped too.

Records from other libraries (pynetdicom, pydicom, Python warnings, uncaught
exceptions in threads) go through the same formatter as event ``message``
with fields ``logger`` and ``message`` (and ``traceback``, on the same line).
The library only logs through :mod:`logging`; :func:`configure` is for the command line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from typing import Any

_FIELDS = "rtcheck_fields"
_EVENT = "rtcheck_event"
_EXCEPTION_EVENT = "message"
_BARE = re.compile(r'^[^\s"=\\]+$')
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "\\": "\\\\"}
# Characters json.dumps(ensure_ascii=False) leaves raw but str.splitlines() and many log shippers split on,
# or that cannot be encoded (lone surrogates).
_JSON_UNSAFE = re.compile("[\u007f-\u009f\u2028\u2029\ud800-\udfff]")


def log_event(logger: logging.Logger, level: int, event: str, *, exc_info: bool = False, **fields: Any) -> None:
    """Log ``event`` with ``fields`` (rendered ``key=value`` in plain text, as keys in JSON).

    ``exc_info``: add the exception being handled as field ``traceback`` (one line, escaped).
    """
    if not logger.isEnabledFor(level):
        return
    if exc_info:
        import traceback

        fields["traceback"] = traceback.format_exc().rstrip("\n")
    logger.log(level, "%s", render_plain(event, fields), extra={_EVENT: event, _FIELDS: fields})


def escape_value(value: Any) -> str:
    """``value`` as one plain-log token: bare when safe, else quoted with every unsafe character escaped."""
    text = "" if value is None else str(value)
    if text and _BARE.match(text) and text.isprintable():
        return text
    out = []
    for char in text:
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif char.isprintable() or char == " ":
            out.append(char)
        elif ord(char) <= 0xFF:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def render_plain(event: str, fields: dict[str, Any]) -> str:
    """``event key=value...`` with every value (and the event name) escaped by :func:`escape_value`."""
    return " ".join([escape_value(event), *(f"{escape_value(k)}={escape_value(v)}" for k, v in fields.items())])


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def _event_of(record: logging.LogRecord, formatter: logging.Formatter) -> tuple[str, dict[str, Any]]:
    """The record as (event, fields): rtcheck's own events as logged, any other record as a ``message``."""
    event = getattr(record, _EVENT, None)
    if event:
        fields = dict(getattr(record, _FIELDS, {}))
    else:
        event = _EXCEPTION_EVENT
        try:
            message = record.getMessage()
        except Exception as exc:  # noqa: BLE001 - a library's malformed format string must not lose the line
            message = f"{record.msg!r} (cannot format: {exc})"
        fields = {"logger": record.name, "message": message}
    if record.exc_info:
        fields["traceback"] = formatter.formatException(record.exc_info)
    return event, fields


class PlainFormatter(logging.Formatter):
    """``<UTC time> <LEVEL> <event> key=value...``: always exactly one line."""

    def format(self, record: logging.LogRecord) -> str:
        event, fields = _event_of(record, self)
        return f"{_timestamp(record)} {record.levelname} {render_plain(event, fields)}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, event and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        event, fields = _event_of(record, self)
        document: dict[str, Any] = {"time": _timestamp(record), "level": record.levelname, "event": event}
        document.update({k: v if isinstance(v, (int, float, bool)) or v is None else str(v) for k, v in fields.items()})
        return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(document, ensure_ascii=False))


class _OneLineHandler(logging.StreamHandler):
    """A stream handler whose own failures (an unwritable stream...) are one line too, not a traceback."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        try:
            error = sys.exc_info()[1]
            self.stream.write(f"{_timestamp(record)} ERROR {render_plain('log-error', {'error': repr(error)})}\n")
            self.flush()
        except Exception:  # noqa: BLE001 - nothing else can be done about a broken stderr
            pass


def configure(*, as_json: bool, level: int = logging.INFO) -> None:
    """Send every log record of the process to stderr through one formatter, plain or JSON.

    rtcheck at ``level``; pynetdicom, pydicom and every other library at WARNING;
    Python warnings and exceptions that escape a thread become log records too.
    """
    handler = _OneLineHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name, logger_level in (("rtcheck", level), ("pynetdicom", logging.WARNING), ("pydicom", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.setLevel(logger_level)
        logger.propagate = True
    logging.captureWarnings(True)
    uncaught = logging.getLogger("rtcheck.uncaught")

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        thread = args.thread.name if args.thread else "?"
        uncaught.error("uncaught exception in thread %s", thread,
                       exc_info=(args.exc_type, args.exc_value, args.exc_traceback))  # type: ignore[arg-type]

    threading.excepthook = thread_hook
