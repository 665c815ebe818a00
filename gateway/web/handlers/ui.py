"""`GET {prefix}/ui/logo` and `{prefix}/ui/providers/{name}/logo`: the pages' images,
served from the gateway so that the pages' CSP allows images from 'self' only."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import NotFound
from gateway.web.pages.assets import Logo
from gateway.web.pages.respond import site_of

# An SVG opened on its own must not run script or load anything.
_IMAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


async def logo(request: web.Request) -> web.StreamResponse:
    return await _serve(site_of(request).logo)


async def provider_logo(request: web.Request) -> web.StreamResponse:
    return await _serve(site_of(request).provider_logos.get(request.match_info["provider"]))


async def _serve(source: Logo | None) -> web.StreamResponse:
    image = await source.get() if source is not None else None
    if image is None:
        raise NotFound("no logo configured or it could not be fetched", public="No logo.")
    return web.Response(
        body=image.body,
        content_type=image.content_type,
        headers={
            "Cache-Control": "public, max-age=3600",
            "Content-Security-Policy": _IMAGE_POLICY,
            "X-Content-Type-Options": "nosniff",
        },
    )
