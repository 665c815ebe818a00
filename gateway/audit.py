"""The audit log: one structured line per security event, on its own logger (gateway.audit)."""

from __future__ import annotations

import logging
from typing import Literal

from gateway.config.model import AuditLog
from gateway.log import JsonFormatter, context_filter

audit_log = logging.getLogger("gateway.audit")

# The fixed vocabulary (docs/observability.md "Audit log"): an operator's queries and
# alerts match these names, so a new event is a new name, never a renamed one.
AuditEvent = Literal[
    "login_succeeded",
    "login_failed",
    "logout",
    "backchannel_logout",
    "backchannel_logout_refused",
    "frontchannel_logout",
    "admin_sessions_listed",
    "admin_sessions_revoked",
    "admin_refused",
    "step_up_required",
    "step_up_satisfied",
    "step_up_refused",
    "token_revoked",
    "token_revocation_failed",
]
Field = str | int | None


def audit(event: AuditEvent, **fields: Field) -> None:
    """Write one audit line: the event name as message and field, plus the given fields.

    Callers pass identifiers (sub, iss, sid, provider, client address, counts, reasons),
    never credentials; the formatters' redaction is the second line of defence."""
    extra = {key: value for key, value in fields.items() if value is not None}
    audit_log.info(event, extra={"event": event, **extra})


def setup_audit(settings: AuditLog) -> None:
    """Off, to stderr with the other logs, or only to its own file as JSON lines."""
    audit_log.disabled = not settings.enabled
    audit_log.setLevel(logging.INFO)  # audited whatever logging.level says
    for handler in audit_log.handlers[:]:
        audit_log.removeHandler(handler)
        handler.close()
    audit_log.propagate = settings.file is None
    if settings.file is not None and settings.enabled:
        handler = logging.FileHandler(settings.file, encoding="utf-8")
        handler.setFormatter(JsonFormatter())
        handler.addFilter(context_filter())
        audit_log.addHandler(handler)
