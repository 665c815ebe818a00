"""The Content-Security-Policy of the gateway's pages: nothing but a nonce'd style sheet,
images from the gateway itself, and forms only where a page has one."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.crypto import random_token


def new_nonce() -> str:
    return random_token(18)


def page_policy(
    nonce: str,
    *,
    form_action: Iterable[str] = (),
    frame_ancestors: str = "'none'",
) -> str:
    """No script at all; the one inline <style> must carry this response's nonce."""
    sources = " ".join(form_action) or "'none'"
    return (
        "default-src 'none'; "
        f"style-src 'nonce-{nonce}'; "
        "img-src 'self'; "
        f"form-action {sources}; "
        f"frame-ancestors {frame_ancestors}; "
        "base-uri 'none'"
    )
