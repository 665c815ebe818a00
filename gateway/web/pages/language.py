"""Pick the page language from Accept-Language (RFC 9110 12.5.4) or the config."""

from __future__ import annotations

from collections.abc import Collection


def parse_accept_language(header: str) -> list[str]:
    """Primary language subtags in the client's order of preference (q=0 left out)."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")[:32]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().split("-")[0].lower()
        if primary and quality > 0:
            ranked.append((-quality, position, primary))
    return [tag for _, _, tag in sorted(ranked)]


def choose_language(
    header: str, available: Collection[str], *, forced: str | None, default: str
) -> str:
    """The configured language, else the client's first available choice, else the default."""
    if forced is not None:
        return forced
    for tag in parse_accept_language(header):
        if tag in available:
            return tag
        if tag == "*":
            return default
    return default
