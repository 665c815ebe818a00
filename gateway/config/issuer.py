"""Issuer URL rules (Para's guide): https, no query, fragment or credentials; pure functions."""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
__all__ = ["is_loopback_host", "split_url", "validate_issuer"]


def split_url(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading .port validates it (raises on junk)
    except ValueError:
        return None
    return parts


def is_loopback_host(host: str) -> bool:
    """True for 'localhost' names and loopback IP literals (no DNS lookup)."""
    host = host.lower().rstrip(".")
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_issuer(issuer: str, *, allow_insecure_http: bool) -> list[str]:
    """Problems with an issuer URL, each a plain sentence; empty when it is acceptable."""
    parts = split_url(issuer)
    if parts is None or not parts.scheme or not parts.hostname:
        return [f"The issuer {issuer!r} is not a URL like https://idp.example.com."]
    problems: list[str] = []
    if parts.scheme == "http":
        if not is_loopback_host(parts.hostname):
            problems.append("The issuer must use https; plain http is allowed only on loopback.")
        elif not allow_insecure_http:
            problems.append(
                "The issuer uses plain http; set allow_insecure_http to allow it on loopback."
            )
    elif parts.scheme != "https":
        problems.append(f"The issuer must use https, not {parts.scheme!r}.")
    if parts.username is not None or parts.password is not None:
        problems.append("The issuer must not contain credentials (user:password@).")
    if parts.query or issuer.rstrip("#").endswith("?"):
        problems.append("The issuer must not contain a query string.")
    if parts.fragment or "#" in issuer:
        problems.append("The issuer must not contain a fragment (#...).")
    return problems
