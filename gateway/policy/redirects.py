"""Where a browser may be sent after login or logout: never to a host we do not serve."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import unquote, urlsplit

_FALLBACK = "/"


def safe_return_url(candidate: str | None, origin: str, allowed_hosts: Collection[str]) -> str:
    """``candidate`` if it stays on ``origin`` (scheme://host[:port]) or an allowed host, else '/'.

    Relative targets must be plain absolute paths; anything a browser could read as
    another host (``//evil``, ``/\\evil``, ``https:evil``, encoded or with control
    characters) falls back to '/'.
    """
    if not candidate or len(candidate) > 4096:
        return _FALLBACK
    # Browsers strip tabs/newlines and treat backslashes like slashes: judge the worst reading.
    decoded = candidate
    for _ in range(3):
        decoded = unquote(decoded)
    if any(ord(c) < 0x20 or c == "\x7f" for c in decoded) or "\\" in decoded:
        return _FALLBACK
    if candidate.startswith("/"):
        if candidate.startswith("//") or decoded.startswith("//"):
            return _FALLBACK
        return candidate
    try:
        parts = urlsplit(candidate)
        username, hostname = parts.username, parts.hostname
    except ValueError:  # '[' without ']', a netloc that NFKC-folds into '/', ...
        return _FALLBACK
    if parts.scheme not in ("http", "https") or not parts.netloc or username is not None:
        return _FALLBACK
    if "@" in parts.netloc:
        return _FALLBACK
    target_origin = f"{parts.scheme}://{parts.netloc}".lower()
    if target_origin == origin.lower():
        return candidate
    host = (hostname or "").lower()
    if any(_host_allowed(host, allowed) for allowed in allowed_hosts) and parts.scheme == "https":
        return candidate
    return _FALLBACK


def _host_allowed(host: str, allowed: str) -> bool:
    allowed = allowed.lower()
    if allowed.startswith("*."):
        return host.endswith(allowed[1:]) and len(host) > len(allowed) - 1
    return host == allowed
