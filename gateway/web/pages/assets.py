"""Logos the pages show, served by the gateway itself so the CSP needs only img-src 'self'.

A logo is a file (read when the config is compiled) or an http(s) URL (fetched on first
use, then kept): either way the browser loads it from {prefix}/ui/..., never elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from gateway.errors import ConfigError

log = logging.getLogger("gateway.pages")
MAX_LOGO_BYTES = 512 * 1024
_FETCH_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Image:
    body: bytes
    content_type: str


def image_type(body: bytes) -> str | None:
    """The image type by its magic bytes; None for anything that is not a known image."""
    if body.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if body.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if body.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        return "image/webp"
    head = body[:1024].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in head:
        return "image/svg+xml"
    return None


def _checked(body: bytes, where: str) -> Image:
    if len(body) > MAX_LOGO_BYTES:
        raise ValueError(f"{where} is larger than {MAX_LOGO_BYTES // 1024} KiB")
    kind = image_type(body)
    if kind is None:
        raise ValueError(f"{where} is not a PNG, JPEG, GIF, WebP or SVG image")
    return Image(body, kind)


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


@dataclass
class Logo:
    """One configured logo: its bytes once known, and where to get them."""

    source: str
    key_path: str
    image: Image | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def from_config(cls, source: str, key_path: str) -> Logo:
        """A file is read now (a ConfigError names the key); a URL is fetched on first use."""
        logo = cls(source, key_path)
        if not is_url(source):
            try:
                logo.image = _checked(Path(source).read_bytes()[: MAX_LOGO_BYTES + 1], source)
            except OSError as exc:
                raise ConfigError([f"{key_path}: cannot read {source!r}: {exc.strerror}"]) from None
            except ValueError as exc:
                raise ConfigError([f"{key_path}: {exc}"]) from None
        return logo

    async def get(self) -> Image | None:
        """The image, fetching a URL logo once; None (and a log line) when it cannot be had."""
        if self.image is not None:
            return self.image
        async with self._lock:
            if self.image is None:
                self.image = await _fetch(self.source, self.key_path)
        return self.image


async def _fetch(url: str, key_path: str) -> Image | None:
    timeout = aiohttp.ClientTimeout(total=_FETCH_TIMEOUT)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(url, allow_redirects=False) as response,
        ):
            if response.status != 200:
                log.warning("%s: %s answered HTTP %d", key_path, url, response.status)
                return None
            body = await response.content.read(MAX_LOGO_BYTES + 1)
        return _checked(body, url)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("%s: cannot fetch the logo from %s: %s", key_path, url, exc)
        return None
