"""Who is calling: a session or a bearer token, per the route's auth mode (fails closed)."""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from gateway.errors import Forbidden, GatewayError
from gateway.policy.routes import CompiledRoute
from gateway.types import Principal
from gateway.web.services import Services


class NoAuthenticator(GatewayError):
    status = 503
    code = "no_authenticator"
    public_message = "This application requires sign-in, but the gateway has no way to do it."


async def establish_identity(
    request: web.Request, services: Services, route: CompiledRoute
) -> Principal | web.StreamResponse:
    """The caller's principal, or a response (redirect to login / 401) to send instead."""
    raise NoAuthenticator(f"route {route.name} needs {route.config.auth} but none is configured")


def authorize(route: CompiledRoute, principal: Principal, method: str) -> None:
    raise Forbidden("no policy engine configured")


async def identity_headers(
    request: web.Request,
    services: Services,
    route: CompiledRoute,
    principal: Principal | None,
    headers: CIMultiDict[str],
) -> None:
    """Remove client-sent identity headers always; add the principal's when there is one."""
    return None
