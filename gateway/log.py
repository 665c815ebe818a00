"""Logging: JSON lines (or text), a request id on every line, secrets never written."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from gateway.tracing import current_ids

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
subject_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("subject", default=None)

# Last line of defence: anything shaped like a JWT, a bearer credential or a code parameter.
# Replacements are functions, not templates: a template is compiled through an import,
# which fails for a line logged while the interpreter shuts down (an unclosed session's
# __del__), and the redactor itself must never be what prints a traceback.
_SECRET_SHAPES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
        lambda _match: "[jwt]",
    ),
    (
        re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
        lambda match: match.group(1) + " [redacted]",
    ),
    (
        re.compile(
            r"(?i)\b(code|state|token|access_token|refresh_token|id_token|logout_token|"
            r"client_secret|password|code_verifier)=[^&\s\"']+"
        ),
        lambda match: match.group(1) + "=[redacted]",
    ),
]
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_SHAPES:
        text = pattern.sub(replacement, text)
    return text


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        # With tracing on, every line of a request (its access line too) names its trace.
        ids = current_ids()
        if ids is not None:
            record.trace_id, record.span_id = ids
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", "-"),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out and not key.startswith("_"):
                out[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info and record.levelno >= logging.ERROR:
            out["error"] = redact(self.formatException(record.exc_info).splitlines()[-1])
        return json.dumps(out, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        shown = getattr(record, "_in_message", ())
        extras = " ".join(
            f"{k}={v}"
            for k, v in vars(record).items()
            if k not in _STANDARD and k != "request_id" and k not in shown and k[0] != "_"
        )
        line = (
            f"{time.strftime('%H:%M:%S', time.localtime(record.created))} "
            f"{record.levelname:<7} [{getattr(record, 'request_id', '-')}] "
            f"{record.getMessage()} {extras}"
        )
        return redact(_CONTROL.sub(_escape, line.rstrip()))


# One record, one line: a CR/LF that came from a request (a decoded path) must not start a
# forged line in a text log. JSON escapes these itself.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def context_filter() -> logging.Filter:
    """The filter that adds request_id (and trace ids) to a record, for other handlers."""
    return _ContextFilter()


def setup_logging(fmt: str = "json", level: str = "info") -> None:
    """Route every logger through one stderr handler in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's own access log is replaced by ours.
    logging.getLogger("aiohttp.access").disabled = True
