"""`/jwks` and `/.well-known/jwks.json`: the public keys of the gateway's identity tokens."""

from __future__ import annotations

import json

from aiohttp import web

from gateway.web.keys import SERVICES

# Relying parties may cache the set; a rotation publishes the new key before it signs.
CACHE_CONTROL = "public, max-age=300"


async def jwks(request: web.Request) -> web.Response:
    """The JWK Set (RFC 7517 5) of every configured signing key, private parts never included."""
    keys = request.app[SERVICES].identity_tokens.jwks()
    return web.Response(
        text=json.dumps(keys),
        content_type="application/json",
        headers={"Cache-Control": CACHE_CONTROL, "Access-Control-Allow-Origin": "*"},
    )
