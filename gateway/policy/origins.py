"""Whether a browser's Origin may open a WebSocket with the session cookie (pure)."""

from __future__ import annotations

from collections.abc import Collection

from gateway.config.model import canonical_origin


def websocket_origin_allowed(origin: str | None, own: str, allowed: Collection[str]) -> bool:
    """True if ``origin`` is the route's own origin ``own`` or one of ``allowed`` (canonical).

    A missing, ``null`` or malformed Origin is refused: every browser sends one on a
    WebSocket handshake, and a cookie-carrying client that does not is no browser we
    can protect by any other means.
    """
    if not origin:
        return False
    try:
        presented = canonical_origin(origin)
    except ValueError:
        return False
    if presented in allowed:
        return True
    try:
        return presented == canonical_origin(own)
    except ValueError:
        return False
