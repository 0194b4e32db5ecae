"""The daemon's log lines: JSON objects (one per line) for journald and log shippers,
or readable text on a terminal.

A record's ``extra`` fields (``log.info("http", extra={"status": 200})``) become keys of
the JSON object, or ``key=value`` after the text message. Nothing here knows what a
secret is: callers never pass keys, signatures or consents (`perpd.api._access_log`
logs the method, route, status and duration, never a header or a body).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

FORMATS = ("auto", "json", "text")
HANDLER = "perpd.stderr"
# The attributes every LogRecord has: anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


def _utc(record: logging.LogRecord) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...extra, "exc"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _utc(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line |= extras(record)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value ...`` for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in extras(record).items())
        text = f"{_utc(record)} {record.levelname} {record.name}: {record.getMessage()}"
        text = f"{text} {fields}" if fields else text
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure(level: str, fmt: str = "auto") -> None:
    """Log to stderr at ``level``: JSON unless ``fmt`` is text, or auto on a terminal."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else TextFormatter())
    handler.set_name(HANDLER)
    root = logging.getLogger()
    # replace only a handler of ours (configure may run twice); leave others in place
    root.handlers[:] = [h for h in root.handlers if h.get_name() != HANDLER] + [handler]
    root.setLevel(level.upper())
    # hypercorn's own access log would repeat ours without the request id
    logging.getLogger("hypercorn.access").disabled = True
