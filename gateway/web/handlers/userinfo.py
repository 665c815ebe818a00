"""`/userinfo`: the session's identity as JSON, for front-ends."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import Unauthorized
from gateway.web.handlers.login import login_services
from gateway.web.responses import json_response

# Claims that are bookkeeping of the token, not facts about the user.
_HIDDEN = frozenset({"nonce", "at_hash", "c_hash", "auth_time", "aud", "azp", "exp", "iat", "jti"})


async def userinfo(request: web.Request) -> web.StreamResponse:
    services = login_services(request)
    principal = await services.session_principal(request)
    if principal is None:
        raise Unauthorized("no session")
    claims = {k: v for k, v in principal.claims.items() if k not in _HIDDEN}
    return json_response({"sub": principal.subject, "issuer": principal.issuer, "claims": claims})
